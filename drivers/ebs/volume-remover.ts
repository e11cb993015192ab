import { rmdir } from 'node:fs/promises';
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
}

/** Remove: only a volume that nothing holds, mounts or moves; its moving aids go with it, backups stay. */
export class VolumeRemover {
  constructor(private readonly deps: RemoverDeps) {}

  async remove(name: string, mountpoint: string, ctx: OperationContext): Promise<void> {
    const { calls, catalog, snapshots } = this.deps;
    try {
      const volume = await catalog.lookup(name, ctx.deadline, ctx.log);
      if (!volume) throw new VolumeNotFoundError(name);
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
      for (const snapshot of await snapshots.movingAids(name, ctx)) await snapshots.delete(snapshot.id, ctx);
    } finally {
      catalog.invalidate();
    }
    await rmdir(mountpoint).catch((err: NodeJS.ErrnoException) => {
      // Files in an unmounted mountpoint are not the volume's; leave them for a person to look at.
      if (err.code !== 'ENOENT') ctx.log.warn({ mountpoint, err: err.message }, 'mountpoint folder not removed');
    });
  }
}
