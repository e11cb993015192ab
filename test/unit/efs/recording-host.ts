import { mkdir, rm, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Host, MountEntry, NfsMountType, UnmountOptions } from '../../../host/host.js';

/**
 * A Host for shared-volume drivers: an NFS "mount" only makes the target folder (so a share root is
 * a plain temp folder the driver writes in), and every mount and unmount is recorded with its arguments.
 */
export class RecordingHost implements Host {
  readonly nfsMounts: { source: string; target: string; options: readonly string[]; type: NfsMountType }[] = [];
  readonly unmounts: { target: string; options: UnmountOptions | undefined }[] = [];

  /** Where each server's root "mount" is, so a later mount of a path below it can lead there. */
  private readonly roots = new Map<string, { path: string; target: string }>();

  async mountNfs(source: string, target: string, options: readonly string[], type: NfsMountType = 'nfs4'): Promise<void> {
    this.nfsMounts.push({ source, target, options: [...options], type });
    const colon = source.indexOf(':');
    const [server, path] = [source.slice(0, colon), source.slice(colon + 1)];
    const root = this.roots.get(server);
    if (type === 'nfs4' && root && path !== root.path && path.startsWith(`${root.path.replace(/\/$/, '')}/`)) {
      // A link stands in for the mount, so the driver's check that it mounted the volume's directory holds.
      await rm(target, { recursive: true, force: true });
      await mkdir(dirname(target), { recursive: true });
      await symlink(join(root.target, path.slice(root.path.length)), target);
      return;
    }
    if (!root || root.target === target) this.roots.set(server, { path, target });
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
  async deviceHeldBy(): Promise<string | undefined> {
    throw new Error('not used by shared drivers');
  }
  async setRootOwner(): Promise<void> {
    throw new Error('not used by shared drivers');
  }
  async deviceSize(): Promise<number> {
    throw new Error('not used by shared drivers');
  }
  async filesystemSize(): Promise<number> {
    throw new Error('not used by shared drivers');
  }
  async growFilesystem(): Promise<void> {
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
  async freeze(): Promise<void> {
    throw new Error('not used by shared drivers');
  }
  async thaw(): Promise<void> {
    throw new Error('not used by shared drivers');
  }

  withLog(): Host {
    return this;
  }
}
