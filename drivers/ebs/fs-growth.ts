import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { CreateTagsCommand } from '@aws-sdk/client-ec2';
import type { Logger } from '../../core/log.js';
import { VOLUME_NAME } from '../../core/option-rules.js';
import type { EbsVolume } from '../../core/schema/ebs-volume.js';
import { Tags } from '../../core/schema/tags.js';
import { FILESYSTEMS, type Filesystem } from '../../core/volume-options.js';
import type { Host } from '../../host/host.js';
import type { EbsCalls } from './ebs-calls.js';
import type { VolumeCatalog } from './volume-catalog.js';

const MiB = 1024 ** 2;
/**
 * A device bigger than its filesystem by less than this counts as filled: ext4 and xfs leave a tail
 * too small for a block group or allocation group. EBS grows by whole GiB.
 */
const SLACK_BYTES = 64 * MiB;

/** The device has room its filesystem does not use yet. */
export function roomToGrow(deviceBytes: number, filesystemBytes: number): boolean {
  return deviceBytes - filesystemBytes >= SLACK_BYTES;
}
/** A grow that failed (a damaged filesystem) is tried again this much later, not at every check. */
const RETRY_AFTER_FAILURE_MS = 5 * 60_000;
/** Tags are written within this long; a slow EC2 only delays the record, never the growth. */
const TAG_DEADLINE_MS = 30_000;

export interface GrowthDeps {
  host: Host;
  calls: EbsCalls;
  catalog: VolumeCatalog;
  mountRoot: string;
  log: Logger;
  /** How often the volumes mounted here are checked (a read of /sys per volume). */
  intervalMs: number;
}

interface MountedVolume {
  name: string;
  device: string;
  mountpoint: string;
  fs: Filesystem;
}

/** The filesystem's size for Tags.filesystemMiB. */
export function toMiB(bytes: number): number {
  return Math.floor(bytes / MiB);
}

/**
 * A modification (`stowage modify --size`) makes the EBS volume bigger, not its filesystem. The
 * node holding the volume notices by itself: every interval it compares each mounted volume's device
 * size with its filesystem's, and grows the filesystem online (open files and writes carry on). A
 * Mount does the same right after mounting. A volume being mounted or unmounted here is left alone
 * meanwhile (`excluding`): growing it would hold the mount busy.
 */
export class FilesystemGrowth {
  private timer: NodeJS.Timeout | undefined;
  private pass: Promise<void> | undefined;
  /** device → its size when last checked, and when it is checked again at that size (after a failed grow). */
  private readonly seen = new Map<string, { bytes: number; again: number }>();
  /** Names a Mount or Unmount works on now, with how many of them. */
  private readonly excluded = new Map<string, number>();
  /** The grow running for a name, which an Unmount waits out. */
  private readonly running = new Map<string, Promise<void>>();

  constructor(private readonly deps: GrowthDeps) {}

  start(): void {
    this.timer = setInterval(() => void this.checkMounted(), this.deps.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.pass;
  }

  /** Runs `work` (a Mount, an Unmount) on `name` with no grow of it running or starting meanwhile. */
  async excluding<T>(name: string, work: () => Promise<T>): Promise<T> {
    this.excluded.set(name, (this.excluded.get(name) ?? 0) + 1);
    try {
      await this.running.get(name);
      return await work();
    } finally {
      const left = this.excluded.get(name)! - 1;
      if (left === 0) this.excluded.delete(name);
      else this.excluded.set(name, left);
    }
  }

  /** One pass over the volumes mounted here; passes never overlap. */
  checkMounted(): Promise<void> {
    this.pass ??= this.checkAll().finally(() => (this.pass = undefined));
    return this.pass;
  }

  /** Right after a Mount: a device bigger than its filesystem (a modification while detached) has it grown now. */
  async afterMount(volume: EbsVolume, mountpoint: string, log: Logger): Promise<void> {
    const mounted = await this.deps.host.mountAt(mountpoint);
    if (!mounted || !isFilesystem(mounted.fstype)) return;
    const grown = await this.growIfBigger({ name: volume.name, device: mounted.source, mountpoint, fs: mounted.fstype }, log).catch((err: unknown) => {
      // The data is whole and mounted; the next check tries again.
      log.error({ err, volumeId: volume.id }, 'could not grow the filesystem to its device; the volume is mounted at its old size');
      return undefined;
    });
    if (grown !== undefined) await this.record(volume, grown, log);
  }

  private async checkAll(): Promise<void> {
    const { log } = this.deps;
    try {
      for (const volume of await this.mountedHere()) {
        if (this.excluded.has(volume.name)) continue;
        const volumeLog = log.child({ volume: volume.name });
        const growth = this.growIfBigger(volume, volumeLog);
        const done = growth.then(() => undefined, () => undefined);
        this.running.set(volume.name, done);
        try {
          const grown = await growth;
          if (grown !== undefined) {
            const found = await this.deps.catalog.lookup(volume.name, Date.now() + TAG_DEADLINE_MS, volumeLog);
            if (found) await this.record(found, grown, volumeLog);
          }
        } catch (err) {
          // A kernel may refuse online growth (ext4 needs CAP_SYS_RESOURCE): the next Mount grows it offline.
          volumeLog.error({ err, device: volume.device }, 'could not grow the filesystem online to its device; the next Mount grows it');
        } finally {
          if (this.running.get(volume.name) === done) this.running.delete(volume.name);
        }
      }
    } catch (err) {
      log.error({ err }, 'could not check the sizes of the volumes mounted here');
    }
  }

  /** Stowage's EBS mounts on this node: ext4 or xfs on a device, right under the mount root. */
  private async mountedHere(): Promise<MountedVolume[]> {
    const root = await realpath(this.deps.mountRoot).catch(() => path.resolve(this.deps.mountRoot));
    return (await this.deps.host.mounts()).flatMap((m) => {
      const name = path.basename(m.target);
      if (path.dirname(m.target) !== root || !VOLUME_NAME.test(name) || m.root !== '/' || !isFilesystem(m.fstype) || !m.source.startsWith('/dev/')) return [];
      return [{ name, device: m.source, mountpoint: m.target, fs: m.fstype }];
    });
  }

  /** The filesystem's bytes after growing it, or undefined when the device was not bigger (or did not change since the last check). */
  private async growIfBigger(volume: MountedVolume, log: Logger): Promise<number | undefined> {
    const { host } = this.deps;
    const bytes = await host.deviceSize(volume.device);
    const last = this.seen.get(volume.device);
    if (last && last.bytes === bytes && Date.now() < last.again) return undefined;
    // Until the grow succeeds, this size is tried again only after a while.
    this.seen.set(volume.device, { bytes, again: Date.now() + RETRY_AFTER_FAILURE_MS });
    const before = await host.filesystemSize(volume.device, volume.fs, volume.mountpoint);
    let grown: number | undefined;
    if (roomToGrow(bytes, before)) {
      log.info({ device: volume.device, fs: volume.fs, deviceMiB: toMiB(bytes), filesystemMiB: toMiB(before) }, 'the device is bigger than its filesystem: growing it online');
      await host.growFilesystem(volume.device, volume.fs, volume.mountpoint);
      grown = await host.filesystemSize(volume.device, volume.fs, volume.mountpoint);
      log.info({ device: volume.device, filesystemMiB: toMiB(grown), wasMiB: toMiB(before) }, 'filesystem grown');
    }
    this.seen.set(volume.device, { bytes, again: Infinity });
    return grown;
  }

  /** Tags.filesystemMiB, for Status and `stowage inspect` on every node. A failure costs only the record. */
  private async record(volume: EbsVolume, bytes: number, log: Logger): Promise<void> {
    const mib = toMiB(bytes);
    if (volume.filesystemMiB === mib) return;
    const { calls } = this.deps;
    await calls
      .aws('CreateTags', { deadline: Date.now() + TAG_DEADLINE_MS, log }, { volumeId: volume.id }, () =>
        calls.ec2.send(new CreateTagsCommand({ Resources: [volume.id], Tags: [{ Key: Tags.filesystemMiB, Value: String(mib) }] })),
      )
      .then(() => this.deps.catalog.invalidate())
      .catch((err: unknown) => log.warn({ err, volumeId: volume.id }, 'could not record the filesystem size in the volume tags'));
  }
}

function isFilesystem(fstype: string): fstype is Filesystem {
  return (FILESYSTEMS as readonly string[]).includes(fstype);
}
