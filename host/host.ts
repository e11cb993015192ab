import type { Logger } from '../core/log.js';
import type { Filesystem } from '../core/volume-options.js';

/** What `blkid -p` finds on a device. Any signature at all means: never mkfs. */
export interface DeviceProbe {
  /** `ext4`, `xfs`, … when blkid names a filesystem. */
  fstype?: string;
  /** A filesystem, partition table or any other signature is present. */
  hasSignature: boolean;
  /** blkid's own words, for logs and errors. */
  detail: string;
}

/** One line of /proc/self/mountinfo. */
export interface MountEntry {
  mountId: number;
  /** The mount point, unescaped. */
  target: string;
  /** The mounted source (device path, or host:/export for NFS). */
  source: string;
  fstype: string;
  /** Root of the mount within its filesystem (a bind mount of a subfolder shows it). */
  root: string;
  options: string;
}

/** Per-mount flags a bind mount can carry. */
export const BIND_FLAGS = ['nosuid', 'nodev', 'noexec', 'ro'] as const;
export type BindFlag = (typeof BIND_FLAGS)[number];

/** The bind-mount flags among NFS mount options: a bind standing in for NFS must keep them. */
export function bindFlagsOf(options: readonly string[]): BindFlag[] {
  return options.filter((o): o is BindFlag => (BIND_FLAGS as readonly string[]).includes(o));
}

/** `nfs4`: the kernel's client; `efs`: the EFS mount helper. */
export type NfsMountType = 'nfs4' | 'efs';

export interface UnmountOptions {
  /** umount that takes longer (a hung NFS server) is abandoned for `umount -l`, with a warning. */
  timeoutMs?: number;
  /** Use `umount -l` after the timeout instead of failing. */
  lazyAfterTimeout?: boolean;
}

/**
 * The node's operating system, as the drivers need it. Every command runs without a shell, with
 * fixed arguments; failures are HostError with the command's own message.
 */
export interface Host {
  /**
   * The block device of an EBS volume on this node: the by-id link for the volume id in the device
   * folder (Nitro), else the device name requested at attach (Xen). Resolved to the real /dev path;
   * undefined when neither exists yet.
   */
  findDevice(volumeId: string, requestedName?: string): Promise<string | undefined>;
  /** The NVMe serial (EBS puts the volume id there, without the dash), where the kernel shows one. */
  readSerial(device: string): Promise<string | undefined>;
  probe(device: string): Promise<DeviceProbe>;
  /** Formats a blank device fast (no discard pass, lazy init). Refuses a device with any signature. */
  mkfs(device: string, fs: Filesystem, label?: string): Promise<void>;
  /** Checks and repairs what is safe to repair automatically before a mount. */
  fsck(device: string, fs: Filesystem): Promise<void>;
  /** Mounts a block device (creating the target folder); xfs gets `nouuid` (restored copies share a UUID). */
  mount(device: string, target: string, fs: Filesystem, options: readonly string[]): Promise<void>;
  /**
   * Bind-mounts a folder (an emulated EFS/NFS export where the kernel has no NFS client) with the
   * per-mount `flags` (default `nosuid,nodev`: a share is never trusted with devices or set-id files).
   */
  bindMount(source: string, target: string, flags?: readonly BindFlag[]): Promise<void>;
  /**
   * Mounts an NFS export. `efs` goes through the EFS mount helper (amazon-efs-utils: TLS, access
   * points), whose source is `fs-id:/path`.
   */
  mountNfs(source: string, target: string, options: readonly string[], type?: NfsMountType): Promise<void>;
  /** sync + umount. A busy target is a HostError that names what holds it; nothing else is done then. */
  unmount(target: string, options?: UnmountOptions): Promise<void>;
  /** Current mounts, from /proc/self/mountinfo. */
  mounts(): Promise<MountEntry[]>;
  /** The mount whose mount point is exactly `target`, if any. */
  mountAt(target: string): Promise<MountEntry | undefined>;
  sync(): Promise<void>;
  /**
   * `fsfreeze -f`: flushes a mounted filesystem and holds every new write until thaw, so a block
   * snapshot taken meanwhile is filesystem-consistent. Writers pause; they do not fail.
   */
  freeze(mountpoint: string): Promise<void>;
  /** `fsfreeze -u`; a filesystem that is not frozen is left as it is (thawing twice is no error). */
  thaw(mountpoint: string): Promise<void>;
  /** Owner and mode of a mounted filesystem's root: set once, on a fresh volume, for images that run as a non-root user. */
  setRootOwner(mountpoint: string, owner: { uid: number; gid: number; mode: string }): Promise<void>;
  /** Bytes of a block device as the kernel sees it now (more after an EBS modification grew the volume). */
  deviceSize(device: string): Promise<number>;
  /** Bytes a filesystem spans by its own block count (not df's figure, which leaves out metadata); `mountpoint` where it is mounted. */
  filesystemSize(device: string, fs: Filesystem, mountpoint?: string): Promise<number>;
  /** Grows a filesystem to fill its device: online at `mountpoint` (resize2fs, xfs_growfs; open files are unaffected), or an unmounted ext4. */
  growFilesystem(device: string, fs: Filesystem, mountpoint?: string): Promise<void>;
  /**
   * Undefined when an exclusive open of the block device succeeds: nothing mounts or claims it, in
   * any mount namespace. Otherwise who holds it, as far as can be found from here. A path that is
   * not a block device, or an open that fails otherwise, is a HostError: never taken for "free".
   */
  deviceHeldBy(device: string): Promise<string | undefined>;
  /** The same host, logging on an operation's logger (bound to its volume) instead of the process's. */
  withLog(log: Logger): Host;
}
