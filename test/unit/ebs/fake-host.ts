import type { DeviceProbe, Host, MountEntry } from '../../../host/host.js';
import { HostError } from '../../../core/errors.js';
import type { Filesystem } from '../../../core/volume-options.js';

const GiB = 1024 ** 3;

/** A Host whose devices are a map from volume id to device path; records every call. */
export class FakeHost implements Host {
  readonly calls: string[] = [];
  /** volumeId → device path, as a Nitro by-id link would resolve. */
  readonly devices = new Map<string, string>();
  /** device → serial (absent: unreadable, as on Xen). */
  readonly serials = new Map<string, string>();
  /** device → filesystem written on it. */
  readonly filesystems = new Map<string, Filesystem>();
  /** device → a signature that is not a filesystem (`PTTYPE="gpt"`, LVM…). */
  readonly foreign = new Map<string, string>();
  readonly mounted: MountEntry[] = [];
  /** Devices whose probe sees no signature whatever they hold (blkid -p exits 2 when it cannot read them). */
  readonly blankProbe = new Set<string>();
  /** Targets whose umount fails as busy. */
  readonly busy = new Set<string>();
  /** Devices an exclusive open finds busy: mounted in another mount namespace, or claimed by the kernel. */
  readonly busyDevices = new Set<string>();

  /** Devices by kernel name, as on Xen, where the requested name is the fallback: any disk may hold one. */
  readonly byName = new Map<string, string>();
  /** mountpoint → owner and mode set on its root. */
  readonly rootOwners = new Map<string, { uid: number; gid: number; mode: string }>();
  /** device → bytes, as the kernel sees it (1 GiB when not set); a test grows it as an EBS modification would. */
  readonly deviceBytes = new Map<string, number>();
  /** device → bytes its filesystem spans (the device's size after mkfs or a grow). */
  readonly filesystemBytes = new Map<string, number>();
  /** Devices whose grow fails, as resize2fs does on a damaged filesystem. */
  readonly growFails = new Set<string>();

  async findDevice(volumeId: string, requestedName?: string): Promise<string | undefined> {
    this.calls.push(`findDevice ${volumeId} ${requestedName ?? ''}`.trim());
    return this.devices.get(volumeId) ?? (requestedName !== undefined ? this.byName.get(requestedName) : undefined);
  }
  async readSerial(device: string): Promise<string | undefined> {
    return this.serials.get(device);
  }
  async probe(device: string): Promise<DeviceProbe> {
    this.calls.push(`probe ${device}`);
    if (this.blankProbe.has(device)) return { hasSignature: false, detail: 'no signature' };
    const foreign = this.foreign.get(device);
    if (foreign) return { hasSignature: true, detail: foreign };
    const fstype = this.filesystems.get(device);
    return fstype ? { fstype, hasSignature: true, detail: `TYPE="${fstype}"` } : { hasSignature: false, detail: 'no signature' };
  }
  async mkfs(device: string, fs: Filesystem): Promise<void> {
    this.calls.push(`mkfs ${device} ${fs}`);
    if (this.filesystems.has(device)) throw new HostError(`refusing to format ${device}: it has a signature`);
    this.filesystems.set(device, fs);
  }
  async fsck(device: string, fs: Filesystem): Promise<void> {
    this.calls.push(`fsck ${device} ${fs}`);
  }
  async mount(device: string, target: string, fs: Filesystem, options: readonly string[]): Promise<void> {
    this.calls.push(`mount ${device} ${target} ${fs} ${options.join(',')}`.trim());
    this.mounted.push({ mountId: this.mounted.length + 100, target, source: device, fstype: fs, root: '/', options: 'rw' });
  }
  async bindMount(): Promise<void> {
    throw new Error('not used by the EBS driver');
  }
  async mountNfs(): Promise<void> {
    throw new Error('not used by the EBS driver');
  }
  async unmount(target: string): Promise<void> {
    this.calls.push(`unmount ${target}`);
    if (this.busy.has(target)) throw new HostError(`umount ${target}: target is busy (held by pid 42 postgres)`);
    const i = this.mounted.findIndex((m) => m.target === target);
    if (i >= 0) this.mounted.splice(i, 1);
  }
  async mounts(): Promise<MountEntry[]> {
    return [...this.mounted];
  }
  async mountAt(target: string): Promise<MountEntry | undefined> {
    return this.mounted.find((m) => m.target === target);
  }
  async sync(): Promise<void> {}
  /** Mount points frozen now (fsfreeze -f without -u yet). */
  readonly frozen = new Set<string>();
  async freeze(mountpoint: string): Promise<void> {
    this.calls.push(`freeze ${mountpoint}`);
    this.frozen.add(mountpoint);
  }
  async thaw(mountpoint: string): Promise<void> {
    this.calls.push(`thaw ${mountpoint}`);
    this.frozen.delete(mountpoint);
  }
  async deviceHeldBy(device: string): Promise<string | undefined> {
    this.calls.push(`deviceHeldBy ${device}`);
    return this.busyDevices.has(device) ? 'mounted at /srv/elsewhere in the mount namespace of pid 77 (postgres)' : undefined;
  }

  async setRootOwner(mountpoint: string, owner: { uid: number; gid: number; mode: string }): Promise<void> {
    this.calls.push(`setRootOwner ${mountpoint} ${owner.uid}:${owner.gid}:${owner.mode}`);
    this.rootOwners.set(mountpoint, owner);
  }
  // Size reads are not in `calls`: the grow check runs at every Mount, and the call lists say what a Mount does to the device.
  async deviceSize(device: string): Promise<number> {
    return this.deviceBytes.get(device) ?? GiB;
  }
  async filesystemSize(device: string): Promise<number> {
    return this.filesystemBytes.get(device) ?? GiB;
  }
  async growFilesystem(device: string, fs: Filesystem, mountpoint?: string): Promise<void> {
    this.calls.push(`growFilesystem ${device} ${fs}${mountpoint !== undefined ? ` ${mountpoint}` : ''}`);
    if (this.growFails.has(device)) throw new HostError(`resize2fs ${device} failed (exit code 1)`);
    this.filesystemBytes.set(device, await this.deviceSize(device));
  }

  withLog(): Host {
    return this;
  }
}
