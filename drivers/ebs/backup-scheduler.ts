import path from 'node:path';
import type { OperationContext } from '../../core/context.js';
import type { Logger } from '../../core/log.js';
import { interval } from '../../core/option-rules.js';
import type { EbsVolume } from '../../core/schema/ebs-volume.js';
import type { StoredSnapshot } from '../../core/schema/snapshot-record.js';
import type { Host } from '../../host/host.js';
import type { SnapshotStore } from '../../snapshot/snapshot-store.js';
import type { VolumeReads } from '../../aws/volume-reads.js';
import { BackupTaker, type BackupTakerDeps } from './backup-taker.js';
import { mountedFromVolume } from './prepare-device.js';
import type { VolumeCatalog } from './volume-catalog.js';

/** One tick's AWS work gives up after this; the next tick starts over from tags. */
const TICK_WORK_MS = 60_000;
const FREEZABLE = new Set(['ext4', 'xfs']);

export interface BackupSchedulerDeps {
  catalog: VolumeCatalog;
  snapshots: SnapshotStore;
  taker: BackupTaker;
  host: Host;
  me: string;
  mountRoot: string;
  mountpointOf: (name: string) => string;
  log: Logger;
  /** How often the schedule is looked at (default 30 s; tests with second intervals use less). */
  tickMs: number;
  now: () => number;
}

/** What the driver's user chooses about backups (EbsDriverDeps.backups). */
export interface BackupOptions {
  /** How often the schedule is looked at (default 30 s). */
  tickMs?: number;
  drCopy?: BackupTakerDeps['drCopy'];
  whileFrozen?: BackupTakerDeps['whileFrozen'];
}

/** The scheduler with its taker, from the driver's parts. */
export function createBackupScheduler(deps: Omit<BackupSchedulerDeps, 'taker' | 'tickMs'> & BackupOptions & { reads: VolumeReads }): BackupScheduler {
  const { drCopy, whileFrozen, tickMs = 30_000, reads, ...rest } = deps;
  const taker = new BackupTaker({ host: deps.host, snapshots: deps.snapshots, reads, ...(drCopy && { drCopy }), ...(whileFrozen && { whileFrozen }) });
  return new BackupScheduler({ ...rest, taker, tickMs });
}

/** What this node last saw of a name's newest backup: one DescribeSnapshots per name, not one per tick. */
interface NewestBackup {
  startedAt: number;
  coversAttach: string | undefined;
  id: string;
  state: string;
}

/**
 * Scheduled backups (`--opt backup=6h`). The node holding a mounted volume backs it up, frozen
 * around the CreateSnapshot only; a detached volume whose data changed since its newest backup
 * (its last attachment is not the one that backup covers) is backed up by the node that unmounted
 * it, on its next tick. A node restarted in between leaves that backup to the volume's next
 * unmount: nothing else knows who should take it, and a cross-zone move snapshots it anyway.
 * Runs with the driver; stop() ends it between two steps, never with a filesystem frozen.
 */
export class BackupScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private abort = new AbortController();
  private readonly newest = new Map<string, NewestBackup>();
  /** Detached here and maybe changed since its newest backup: this node takes that backup. */
  private readonly unmountedHere = new Set<string>();
  /** Backups whose completion this node awaits, to copy them to the DR region. */
  private readonly awaitingCopy = new Map<string, string>();
  /** Per name: a backup in its freeze window, which an Unmount waits for (and the reverse). */
  private readonly exclusive = new Map<string, Promise<unknown>>();

  constructor(private readonly deps: BackupSchedulerDeps) {}

  /** First thaws whatever a killed predecessor left frozen under the mount root, then ticks. */
  start(): void {
    if (this.timer || this.running) return;
    this.abort = new AbortController();
    this.running = this.thawLeftovers().finally(() => {
      this.running = undefined;
      this.schedule();
    });
  }

  async stop(): Promise<void> {
    this.abort.abort();
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** The detacher's hook: this node let the volume go, so its detached backup is this node's to take. */
  unmounted(name: string): void {
    this.unmountedHere.add(name);
  }

  /** Runs `work` (an Unmount) once no backup of `name` is in its freeze window, and keeps new ones out meanwhile. */
  withVolume<T>(name: string, work: () => Promise<T>): Promise<T> {
    const before = this.exclusive.get(name) ?? Promise.resolve();
    const mine = before.catch(() => undefined).then(work);
    const settled = mine.catch(() => undefined);
    this.exclusive.set(name, settled);
    void settled.then(() => this.exclusive.get(name) === settled && this.exclusive.delete(name));
    return mine;
  }

  /**
   * A plugin killed between `fsfreeze -f` and `-u` leaves the filesystem frozen, and every writer
   * on it hangs. Nothing of ours is frozen at start, so each of our filesystems is thawed
   * (thawing one that is not frozen is no error).
   */
  async thawLeftovers(): Promise<void> {
    const root = this.deps.mountRoot + path.sep;
    const ours = (await this.deps.host.mounts().catch(() => [])).filter((m) => m.target.startsWith(root) && FREEZABLE.has(m.fstype));
    for (const m of ours) {
      await this.deps.host.thaw(m.target).catch((err: unknown) => this.deps.log.error({ err, mountpoint: m.target }, 'could not thaw a filesystem at start'));
    }
  }

  private schedule(): void {
    if (this.abort.signal.aborted) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.tick().finally(() => {
        this.running = undefined;
        this.schedule();
      });
    }, this.deps.tickMs);
    this.timer.unref();
  }

  /** One look at every volume of the cluster this node may have to back up. Never throws. */
  async tick(): Promise<void> {
    const log = this.deps.log.child({ job: 'backup' });
    const step: OperationContext = { deadline: Date.now() + TICK_WORK_MS, log, cancel: this.abort.signal };
    try {
      const volumes = await this.deps.catalog.all(step.deadline, log);
      for (const volume of volumes.values()) {
        if (this.abort.signal.aborted) return;
        const volumeStep = { ...step, log: log.child({ volume: volume.name }) };
        await this.consider(volume, volumeStep).catch((err: unknown) => volumeStep.log.warn({ err, volumeId: volume.id }, 'scheduled backup failed; the next tick tries again'));
      }
    } catch (err) {
      log.warn({ err }, 'backup schedule could not read the volumes; the next tick tries again');
    }
  }

  private async consider(volume: EbsVolume, step: OperationContext): Promise<void> {
    const { me } = this.deps;
    await this.copyIfCompleted(volume, step);
    if (volume.backup === undefined || volume.tagProblems.length > 0) return;
    const holder = volume.attachment?.instanceId;
    if (holder !== undefined && holder !== me) {
      // Someone else holds it now: its backups are theirs, and what this node knew of them ages.
      this.unmountedHere.delete(volume.name);
      this.newest.delete(volume.name);
      return;
    }
    const mountpoint = this.deps.mountpointOf(volume.name);
    if (holder === me) {
      if (!(await this.mountedHere(volume, mountpoint))) return;
      if (!(await this.due(volume, step))) return;
      await this.withVolume(volume.name, async () => {
        // Re-checked inside: an Unmount may have run while this waited.
        if (!(await this.mountedHere(volume, mountpoint))) return;
        await this.taken(volume, await this.deps.taker.mounted(volume, mountpoint, step), step);
      });
      return;
    }
    if (!this.unmountedHere.has(volume.name) || volume.lastAttach === undefined || volume.state !== 'available') return;
    const newest = await this.newestBackup(volume.name, step);
    if (newest?.coversAttach === volume.lastAttach) {
      this.unmountedHere.delete(volume.name); // nothing written since its newest backup
      return;
    }
    if (!(await this.due(volume, step))) return;
    const taken = await this.deps.taker.detached(volume, step);
    if (taken) await this.taken(volume, taken, step);
    this.unmountedHere.delete(volume.name);
  }

  private async taken(volume: EbsVolume, snapshot: StoredSnapshot, step: OperationContext): Promise<void> {
    this.newest.set(volume.name, { startedAt: snapshot.startedAt || this.deps.now(), coversAttach: snapshot.coversAttach, id: snapshot.id, state: snapshot.state });
    step.log.info({ volumeId: volume.id, snapshotId: snapshot.id, attached: volume.attachment !== undefined, interval: volume.backup }, 'backup started');
    if (volume.drRegion !== undefined) this.awaitingCopy.set(snapshot.id, volume.name);
    await this.deps.taker.prune(volume, snapshot, step);
  }

  /** A backup this node took (or, after a restart, the newest one) is copied to the DR region once completed. */
  private async copyIfCompleted(volume: EbsVolume, step: OperationContext): Promise<void> {
    if (volume.drRegion === undefined) return;
    if (!this.newest.has(volume.name) && volume.attachment?.instanceId === this.deps.me) {
      const newest = await this.newestBackup(volume.name, step);
      if (newest) this.awaitingCopy.set(newest.id, volume.name);
    }
    for (const [snapshotId, name] of this.awaitingCopy) {
      if (name !== volume.name) continue;
      const now = await this.deps.snapshots.find(snapshotId, step);
      if (now?.state === 'pending') continue;
      this.awaitingCopy.delete(snapshotId);
      if (now?.state === 'completed') await this.deps.taker.copyToDr(volume, now, step);
    }
  }

  private async due(volume: EbsVolume, step: OperationContext): Promise<boolean> {
    const newest = await this.newestBackup(volume.name, step);
    return newest === undefined || this.deps.now() - newest.startedAt >= interval('backup', volume.backup!, 0);
  }

  private async newestBackup(name: string, step: OperationContext): Promise<NewestBackup | undefined> {
    const known = this.newest.get(name);
    if (known) return known;
    const found = (await this.deps.snapshots.ofName(name, step)).find((s) => s.reason === 'backup' && s.state !== 'error');
    if (found) this.newest.set(name, { startedAt: found.startedAt, coversAttach: found.coversAttach, id: found.id, state: found.state });
    return found && this.newest.get(name);
  }

  /** Mounted at its mountpoint from its own device: a freeze there reaches this volume and no other. */
  private async mountedHere(volume: EbsVolume, mountpoint: string): Promise<boolean> {
    return mountedFromVolume(this.deps.host, volume.id, mountpoint, volume.attachment?.device);
  }
}
