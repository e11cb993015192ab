import { mkdir } from 'node:fs/promises';
import type { Host, MountEntry, NfsMountType, UnmountOptions } from '../../../host/host.js';

/**
 * A Host for shared-volume drivers: an NFS "mount" only makes the target folder (so a share root is
 * a plain temp folder the driver writes in), and every mount and unmount is recorded with its arguments.
 */
export class RecordingHost implements Host {
  readonly nfsMounts: { source: string; target: string; options: readonly string[]; type: NfsMountType }[] = [];
  readonly unmounts: { target: string; options: UnmountOptions | undefined }[] = [];

  async mountNfs(source: string, target: string, options: readonly string[], type: NfsMountType = 'nfs4'): Promise<void> {
    this.nfsMounts.push({ source, target, options: [...options], type });
    await mkdir(target, { recursive: true });
  }
  async unmount(target: string, options?: UnmountOptions): Promise<void> {
    this.unmounts.push({ target, options });
  }
  async findDevice(): Promise<string | undefined> {
    throw new Error('not used by shared drivers');
  }
  async readSerial(): Promise<string | undefined> {
    throw new Error('not used by shared drivers');
  }
  async probe(): Promise<never> {
    throw new Error('not used by shared drivers');
  }
  async mkfs(): Promise<void> {
    throw new Error('not used by shared drivers');
  }
  async fsck(): Promise<void> {
    throw new Error('not used by shared drivers');
  }
  async mount(): Promise<void> {
    throw new Error('not used by shared drivers');
  }
  async bindMount(): Promise<void> {
    throw new Error('not used by shared drivers');
  }
  async mounts(): Promise<MountEntry[]> {
    return [];
  }
  async mountAt(): Promise<MountEntry | undefined> {
    return undefined;
  }
  async sync(): Promise<void> {}

  withLog(): Host {
    return this;
  }
}
