import { rmdir } from 'node:fs/promises';
import { delay } from '../../core/delay.js';
import { DeleteVolumeCommand } from '@aws-sdk/client-ec2';
import { Ec2Code, hasCode, isNotFound } from '../../aws/errors.js';
import type { OperationContext } from '../../core/context.js';
import { VolumeBusyError, VolumeNotFoundError } from '../../core/errors.js';
import type { Host } from '../../host/host.js';
import type { SnapshotStore } from '../../snapshot/snapshot-store.js';
import type { EbsCalls } from './ebs-calls.js';
import type { VolumeCatalog } from './volume-catalog.js';

export interface RemoverDeps {
  calls: EbsCalls;
  host: Host;
  catalog: VolumeCatalog;
  snapshots: SnapshotStore;
  /** The snapshots this node's Unmounts of a name took, once they are done. */
  unmountSnapshots: (name: string, deadline: number) => Promise<string[]>;
}

/** Listings of a removed volume's moving snapshots: one now, and one after EC2's view has settled. */
const AID_ROUNDS = 2;
const AID_SETTLE_MS = 1500;
/** How long the cleanup of a removed volume's aids may take past the Remove's own deadline. */
const AID_STEP_MS = 10_000;

/** Remove: only a volume that nothing holds, mounts or moves; its moving aids go with it, backups stay. */
export class VolumeRemover {
  constructor(private readonly deps: RemoverDeps) {}

  async remove(name: string, mountpoint: string, ctx: OperationContext): Promise<void> {
    const { calls, catalog, snapshots } = this.deps;
    try {
      const listed = await catalog.lookup(name, ctx.deadline, ctx.log);
      if (!listed) throw new VolumeNotFoundError(name);
      // A lagging Describe may show an attachment long gone: a refusal is decided on a fresh view.
      const fresh = listed.attachment && !listed.movingTo ? await this.deps.calls.reads.fresh(listed.id, ctx) : listed;
      const volume = fresh ? { ...fresh, movingTo: listed.movingTo } : listed;
      const context = { volumeId: volume.id, zone: volume.zone };
      if (await this.deps.host.mountAt(mountpoint)) throw new VolumeBusyError(`volume ${name} is mounted at ${mountpoint} on this node`, context);
      if (volume.movingTo) {
        throw new VolumeBusyError(`volume ${name} is moving ${volume.zone} → ${volume.movingTo.zone}; remove it once the move is done (mount it there, or wait)`, context);
      }
      if (volume.attachment) {
        throw new VolumeBusyError(`volume ${name} is attached to instance ${volume.attachment.instanceId} (${volume.attachment.state}); unmount it there first`, {
          ...context,
          instance: volume.attachment.instanceId,
        });
      }
      try {
        await calls.aws('DeleteVolume', ctx, context, () => calls.ec2.send(new DeleteVolumeCommand({ VolumeId: volume.id })));
      } catch (err) {
        if (hasCode(err, Ec2Code.VolumeInUse, Ec2Code.IncorrectState)) throw new VolumeBusyError(`volume ${name} is in use: ${err.message}`, { ...context, requestId: err.context.requestId });
        if (!isNotFound(err)) throw err;
      }
      ctx.log.info(context, 'volume deleted');
      catalog.madeHere(name, undefined);
      // The snapshots it took to move were means, not backups: they go with it (operator backups stay).
      // This node's own are named directly, and the listing is read again a moment later: a
      // lagging Describe may not list one just taken (another node's, taken after this, goes by itself).
      // The volume is gone: the Remove has succeeded. Its aids are cleanup with a step of their own,
      // and one that fails is logged, never the Remove's answer (a retry would find no volume).
      const step = { ...ctx, deadline: Math.max(ctx.deadline, Date.now() + AID_STEP_MS) };
      const gone = new Set<string>();
      const deleted = new Set<string>();
      try {
        for (const id of await this.deps.unmountSnapshots(name, step.deadline)) gone.add(id);
        for (let round = 0; round < AID_ROUNDS; round++) {
          if (round > 0) await delay(AID_SETTLE_MS);
          for (const s of await snapshots.movingAids(name, step)) gone.add(s.id);
          for (const id of gone) if (!deleted.has(id)) await snapshots.delete(id, step).then(() => deleted.add(id));
        }
      } catch (err) {
        ctx.log.warn({ ...context, err, left: [...gone].filter((id) => !deleted.has(id)) }, 'volume deleted, but not all of its moving snapshots; delete them by hand (tag stowage:volume)');
      }
    } finally {
      catalog.invalidate();
    }
    await rmdir(mountpoint).catch((err: NodeJS.ErrnoException) => {
      // Files in an unmounted mountpoint are not the volume's; leave them for a person to look at.
      if (err.code !== 'ENOENT') ctx.log.warn({ mountpoint, err: err.message }, 'mountpoint folder not removed');
    });
  }
}
