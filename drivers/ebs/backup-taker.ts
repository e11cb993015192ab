import type { OperationContext } from '../../core/context.js';
import type { EbsVolume } from '../../core/schema/ebs-volume.js';
import type { StoredSnapshot } from '../../core/schema/snapshot-record.js';
import type { Host } from '../../host/host.js';
import { copyToDrRegion, type DrCopyDeps } from '../../snapshot/dr-copy.js';
import type { SnapshotStore } from '../../snapshot/snapshot-store.js';
import type { VolumeReads } from '../../aws/volume-reads.js';

/** CreateSnapshot returns once EBS marked the point in time; the filesystem stays frozen no longer than this. */
const FROZEN_LIMIT_MS = 10_000;
const THAW_ATTEMPTS = 3;

export interface BackupTakerDeps {
  host: Host;
  snapshots: SnapshotStore;
  reads: VolumeReads;
  /** Copies each completed backup of a volume with `drregion` (snapshot/dr-copy.ts); absent: no DR copies from this node. */
  drCopy?: DrCopyDeps;
  /** Tests: runs while the filesystem is frozen, right before CreateSnapshot. */
  whileFrozen?: (name: string) => Promise<void> | void;
}

/** One scheduled backup of one volume: how it is taken, kept within `backupretain`, and copied to the DR region. */
export class BackupTaker {
  constructor(private readonly deps: BackupTakerDeps) {}

  /**
   * A mounted volume: frozen only around CreateSnapshot (EBS takes the point in time when the call
   * returns, the copying goes on after the thaw), so the backup is filesystem-consistent and
   * writers only pause. The backup carries no covers-attach: it holds part of this attachment's
   * writes, not all of them, so it never passes for the volume's current data.
   */
  async mounted(volume: EbsVolume, mountpoint: string, step: OperationContext): Promise<StoredSnapshot> {
    const host = this.deps.host.withLog(step.log);
    await host.freeze(mountpoint);
    try {
      await this.deps.whileFrozen?.(volume.name);
      return await this.deps.snapshots.createKeeping({ ...volume, lastAttach: undefined }, 'backup', { ...step, deadline: Math.min(step.deadline, Date.now() + FROZEN_LIMIT_MS) });
    } finally {
      await this.thaw(host, mountpoint, step);
    }
  }

  /**
   * A detached volume needs no freeze: nothing writes to it. Decided on a fresh view (EC2 is
   * eventually consistent): a volume attached meanwhile is left to its new holder. Its backup
   * covers the last attachment, which is what tells the next tick that nothing changed since.
   */
  async detached(volume: EbsVolume, step: OperationContext): Promise<StoredSnapshot | undefined> {
    const now = await this.deps.reads.fresh(volume.id, step);
    if (!now || now.attachment) return undefined;
    return this.deps.snapshots.createKeeping(now, 'backup', step);
  }

  /** Retention of this name's backups: the newest `backupretain`, and never one a volume's tags still name. */
  async prune(volume: EbsVolume, taken: StoredSnapshot, step: OperationContext): Promise<void> {
    const protect = new Set([taken.id, volume.snapshotCurrent, volume.snapshot, volume.restoredFrom].filter((s): s is string => s !== undefined));
    await this.deps.snapshots.pruneBackups(volume.name, volume.backupRetain, protect, step);
  }

  /** After a backup completed: its copy in the volume's DR region (idempotent, so a repeat after a restart is harmless). */
  async copyToDr(volume: EbsVolume, backup: StoredSnapshot, step: OperationContext): Promise<void> {
    if (!this.deps.drCopy || volume.drRegion === undefined) return;
    const copy = await copyToDrRegion(this.deps.drCopy, volume, backup, step);
    if (copy) step.log.info({ volumeId: volume.id, snapshotId: backup.id, copyId: copy.snapshotId, region: copy.region, state: copy.state }, 'backup copied to the DR region');
  }

  /** Nothing may stay frozen: a thaw that fails is tried again, then reported loudly (start-up thaws what is left). */
  private async thaw(host: Host, mountpoint: string, step: OperationContext): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await host.thaw(mountpoint);
        return;
      } catch (err) {
        if (attempt >= THAW_ATTEMPTS) {
          step.log.error({ err, mountpoint }, 'could not thaw the filesystem after its backup: writes to it hang until `fsfreeze -u` or a plugin restart');
          throw err;
        }
        step.log.warn({ err, mountpoint, attempt }, 'thaw after the backup failed; trying again');
      }
    }
  }
}
