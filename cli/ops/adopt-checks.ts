import { DescribeInstancesCommand, DescribeVolumesCommand, type Volume } from '@aws-sdk/client-ec2';
import { Tags } from '../../core/schema/tags.js';
import { UnsupportedError, VolumeBusyError, VolumeConflictError, VolumeNotFoundError } from '../../core/errors.js';
import { inEveryRegion, type OpsContext, type RegionTarget } from './context.js';
import { readRegion } from './inventory.js';

/** An EBS volume to adopt under a name, in the region that holds it. */
export interface Candidate {
  target: RegionTarget;
  volume: Volume;
  name: string;
}

/** `fresh`: no cluster tag; `claimed`: ours, not named yet (an earlier adopt stopped after its claim); `adopted`: done before. */
export type Standing = 'fresh' | 'claimed' | 'adopted';

const GONE = new Set(['deleting', 'deleted']);

export const tagOf = (volume: Volume, key: string): string | undefined => volume.Tags?.find((t) => t.Key === key)?.Value;

export async function describeVolume(ctx: OpsContext, target: RegionTarget, id: string): Promise<Volume | undefined> {
  const out = await ctx.aws('DescribeVolumes', () => target.ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'volume-id', Values: [id] }] })), { volumeId: id, region: target.region });
  return out.Volumes?.find((v) => v.VolumeId === id && !GONE.has(v.State ?? ''));
}

/** The region among the targets that holds volume `id`. */
export async function findVolume(ctx: OpsContext, id: string): Promise<{ target: RegionTarget; volume: Volume }> {
  const results = await inEveryRegion(ctx, async (t) => ({ target: t, volume: await describeVolume(ctx, t, id) }));
  const failed = results.find((r) => !r.ok);
  if (failed && !failed.ok) throw failed.error;
  const found = results.flatMap((r) => (r.ok && r.value.volume ? [{ target: r.value.target, volume: r.value.volume }] : []));
  if (found.length === 0) throw new VolumeNotFoundError(id, { regions: ctx.targets.map((t) => t.region).join(',') });
  return found[0]!;
}

/**
 * Refuses, before anything is written, a volume that is not the cluster's to take: one of another
 * cluster, one attached to an instance outside the cluster, one in a state EC2 cannot attach, and
 * a name a live volume of the cluster already carries (in any target region, either backing).
 */
export async function checkAdoptable(ctx: OpsContext, c: Candidate): Promise<Standing> {
  const id = c.volume.VolumeId!;
  const context = { volumeId: id, region: c.target.region, zone: c.volume.AvailabilityZone ?? '' };
  const cluster = tagOf(c.volume, Tags.cluster);
  const named = tagOf(c.volume, Tags.volume);
  if (cluster !== undefined && cluster !== ctx.cluster) {
    throw new VolumeConflictError(`${id} belongs to cluster ${cluster} (${Tags.cluster}=${cluster}), not ${ctx.cluster}: Stowage never takes another cluster's volume`, context);
  }
  if (cluster === ctx.cluster && named !== undefined) {
    if (named === c.name) return 'adopted';
    throw new VolumeConflictError(`${id} is already volume ${named} of cluster ${ctx.cluster}; it cannot also be ${c.name}`, context);
  }
  if (c.volume.State !== 'available' && c.volume.State !== 'in-use') {
    throw new UnsupportedError(`${id} is ${c.volume.State ?? 'in an unknown state'}; only an available or in-use volume can be adopted`, context);
  }
  await checkAttachments(ctx, c, context);
  await checkNameFree(ctx, c.name, id);
  return cluster === ctx.cluster ? 'claimed' : 'fresh';
}

/** Attached only to this cluster's instances (stowage:cluster on the instance), or not at all. */
async function checkAttachments(ctx: OpsContext, c: Candidate, context: Record<string, string>): Promise<void> {
  const holders = [...new Set((c.volume.Attachments ?? []).filter((a) => a.State !== 'detached' && a.InstanceId).map((a) => a.InstanceId!))];
  if (holders.length === 0) return;
  const out = await ctx.aws('DescribeInstances', () => c.target.ec2.send(new DescribeInstancesCommand({ InstanceIds: holders })), context);
  const instances = (out.Reservations ?? []).flatMap((r) => r.Instances ?? []);
  for (const holder of holders) {
    const tag = instances.find((i) => i.InstanceId === holder)?.Tags?.find((t) => t.Key === Tags.cluster)?.Value;
    if (tag === ctx.cluster) continue;
    const whose = tag === undefined ? 'carries no stowage:cluster tag' : `belongs to cluster ${tag}`;
    throw new VolumeBusyError(
      `${c.volume.VolumeId} is attached to instance ${holder}, which ${whose}: it is in use outside cluster ${ctx.cluster}; unmount and detach it there first`,
      { ...context, instance: holder },
      false,
    );
  }
}

/** No live volume of the cluster (EBS or access point, any target region) carries `name`, other than `id`. */
export async function checkNameFree(ctx: OpsContext, name: string, id: string): Promise<void> {
  const results = await inEveryRegion(ctx, (t) => readRegion(ctx, t, name));
  const failed = results.find((r) => !r.ok);
  if (failed && !failed.ok) throw failed.error;
  const holders = results.flatMap((r) =>
    r.ok
      ? [
          ...r.value.volumes.filter((v) => v.id !== id && !GONE.has(v.state)).map((v) => `${v.id} in ${v.zone}`),
          ...r.value.accessPoints.filter((a) => !GONE.has(a.state)).map((a) => `shared volume ${a.id} in ${a.region}`),
        ]
      : [],
  );
  if (holders.length > 0) {
    throw new VolumeConflictError(`name ${name} is taken in cluster ${ctx.cluster} by ${holders.join(', ')}; adopt ${id} under another --name`, { volumeId: id });
  }
}
