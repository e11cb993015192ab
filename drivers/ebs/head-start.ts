import type { OperationContext } from '../../core/context.js';
import { neverWritten, type EbsVolume } from '../../core/schema/ebs-volume.js';
import type { SnapshotStore } from '../../snapshot/snapshot-store.js';

/** The head start must not keep the Mount from watching its holder for long. */
const START_LIMIT_MS = 10_000;

/**
 * A cross-zone Mount kept waiting by a holder that does not let go (a node lost, fenced only after
 * STOWAGE_FENCE_AFTER) snapshots the volume during the wait. That snapshot is never taken for the
 * volume's data: the holder may still write, so it carries no covers-attach and is never marked
 * current. What it buys is the move's own snapshot, taken once the holder is gone: EBS snapshots
 * are incremental, so that one copies only what changed during the wait, not everything since the
 * volume's last snapshot. It is a moving aid (reason `move`): retention and Remove treat it so.
 */
export class HeadStart {
  constructor(private readonly snapshots: SnapshotStore) {}

  /** Never throws: without a head start the move only takes longer. */
  async take(volume: EbsVolume, step: OperationContext): Promise<void> {
    if (neverWritten(volume)) return; // a blank volume is re-created, not copied
    const log = step.log;
    const limited = { ...step, deadline: Math.min(step.deadline, Date.now() + START_LIMIT_MS) };
    const heldSince = volume.attachment?.attachTime !== undefined ? Date.parse(volume.attachment.attachTime) : Infinity;
    try {
      // One per holding, whichever Mount (here or on another node, before a retry) took it.
      const taken = (await this.snapshots.movingAids(volume.name, limited)).find((s) => s.state === 'pending' || (s.state === 'completed' && s.startedAt >= heldSince));
      if (taken) {
        log.info({ volumeId: volume.id, snapshotId: taken.id, state: taken.state }, 'a snapshot taken during this holding already gives the move its head start');
        return;
      }
      const started = await this.snapshots.create({ ...volume, lastAttach: undefined }, 'move', limited);
      log.info({ volumeId: volume.id, snapshotId: started.id, holder: volume.attachment?.instanceId }, 'head-start snapshot while the holder keeps the volume: the move will copy only what changes meanwhile');
    } catch (err) {
      log.warn({ err, volumeId: volume.id }, 'head-start snapshot not taken; the move snapshots everything since the last snapshot');
    }
  }
}
