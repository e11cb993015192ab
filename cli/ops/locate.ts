import { VolumeNotFoundError } from '../../core/errors.js';
import { checkName } from '../../plugin/volume-service.js';
import { inEveryRegion, type OpsContext } from './context.js';
import { UsageError } from './exit-codes.js';
import { groupVolumes, readRegion, type RegionInventory, type VolumeGroup } from './inventory.js';

/** One volume name's resources in the one region that holds it. */
export interface LocatedVolume {
  inventory: RegionInventory;
  /** Absent for a shared volume, or a name only snapshots remain of. */
  group: VolumeGroup | undefined;
}

/**
 * Finds `name` in the target regions (reading only that name's resources). A region that fails
 * fails the command: a volume it holds could be missed and the answer would be wrong.
 */
export async function locateVolume(ctx: OpsContext, rawName: string): Promise<LocatedVolume> {
  const name = checkName(rawName);
  const results = await inEveryRegion(ctx, (t) => readRegion(ctx, t, name));
  const failed = results.find((r) => !r.ok);
  if (failed && !failed.ok) throw failed.error;
  const holding = results.flatMap((r) =>
    r.ok && (r.value.volumes.length > 0 || r.value.snapshots.length > 0 || r.value.accessPoints.length > 0) ? [r.value] : [],
  );
  if (holding.length === 0) {
    throw new VolumeNotFoundError(name, { cluster: ctx.cluster, regions: ctx.targets.map((t) => t.region).join(',') });
  }
  if (holding.length > 1) {
    throw new UsageError(`volume ${name} exists in ${holding.map((h) => h.region).join(' and ')}: pass --region to pick one`);
  }
  const inventory = holding[0]!;
  return { inventory, group: groupVolumes(inventory.volumes)[0] };
}
