import { createHash } from 'node:crypto';
import { CreateVolumeCommand, DescribeVolumesCommand, type VolumeType } from '@aws-sdk/client-ec2';
import { CloudError, DataSafetyError, VolumeConflictError, VolumeNotFoundError } from '../../core/errors.js';
import { volumeTags, volumeTagSpecification } from '../../core/schema/ebs-volume.js';
import { Tags } from '../../core/schema/tags.js';
import { drCopiesOf } from '../../snapshot/dr-copy.js';
import type { OpsContext, RegionTarget } from './context.js';
import { ExitCode } from './exit-codes.js';
import { UsageError } from './exit-codes.js';
import { firstZone } from './inventory.js';
import { printJson } from './output.js';
import { pause, progressLine } from './progress.js';

/** What `stowage restore NAME --region DR` made. */
export interface DrRestoreResult {
  name: string;
  region: string;
  zone: string;
  volumeId: string;
  fromCopy: string;
  sourceRegion: string | undefined;
  /** ISO 8601: the moment whose data the volume holds. */
  dataAsOf: string;
  /** Seconds between that moment and the restore: the data lost (RPO). */
  rpoSeconds: number;
}

/**
 * `stowage restore NAME --region DR [--zone Z]` without `--from`: makes the volume in the DR region
 * from the newest completed DR copy of NAME there, tagged as the cluster's relocatable volume of that
 * name (the copy's generation and options, marked formatted: it is never formatted), so a Swarm in
 * that region with the same STOWAGE_CLUSTER mounts it by name. Needs nothing of the lost region.
 * Refused while a volume of that name lives in the DR region. The volume's KMS key is the copy's
 * (the DR region's); its type, IOPS and throughput are the copy's record of the volume (gp3 at baseline
 * for a copy made before that was recorded); `drregion` is not carried (it named this region).
 */
export async function restoreInDrRegion(ctx: OpsContext, name: string, zoneFlag: string | undefined): Promise<number> {
  if (ctx.targets.length !== 1) throw new UsageError('a restore from a DR copy needs one region: --region DR-REGION');
  const target = ctx.targets[0]!;
  const region = target.region;
  const context = { volume: name, region };
  const aws: Parameters<typeof drCopiesOf>[3] = (operation, send, extra) => ctx.aws(operation, send, { ...context, ...extra });
  const copies = await drCopiesOf(target.ec2, ctx.cluster, name, aws);
  const copy = copies.find((c) => c.state === 'completed');
  if (!copy) {
    const pending = copies.filter((c) => c.state === 'pending').length;
    throw new VolumeNotFoundError(name, { ...context, reason: `no completed DR copy in ${region}${pending ? ` (${pending} still pending)` : ''}` });
  }
  if (copy.options.problems.length > 0)
    throw new DataSafetyError(`DR copy ${copy.id} of ${name} carries tags that break the option rules: ${copy.options.problems.join('; ')}`, { ...context, snapshotId: copy.id });
  await refuseLiveVolumes(ctx, target, name);
  const zone = zoneFlag ?? (await firstZone(ctx, target));
  if (!zone.startsWith(region)) throw new UsageError(`--zone ${zone} is not a zone of ${region}`);

  const o = copy.options;
  const tags = [
    ...volumeTags(ctx.cluster, name, o.generation, {
      fs: o.fs,
      mountopts: o.mountopts,
      backup: o.backup,
      backupretain: o.backupRetain,
      initrate: o.initRate,
      ...o.rootOwner,
    }),
    // made from a snapshot: its data must never be formatted away (invariant 9)
    { Key: Tags.formatted, Value: 'true' },
  ];
  const created = await ctx.aws(
    'CreateVolume',
    () =>
      target.ec2.send(
        new CreateVolumeCommand({
          AvailabilityZone: zone,
          SnapshotId: copy.id,
          VolumeType: (copy.config?.ebstype ?? 'gp3') as VolumeType,
          ...(copy.config?.iops !== undefined && { Iops: copy.config.iops }),
          ...(copy.config?.throughput !== undefined && { Throughput: copy.config.throughput }),
          Encrypted: true,
          ...(o.initRate !== undefined && { VolumeInitializationRate: o.initRate }),
          TagSpecifications: volumeTagSpecification(tags),
          // a second run of the same restore answers the same volume
          ClientToken: createHash('sha256').update(`${ctx.cluster}/${name}/dr-restore/${copy.id}`).digest('hex').slice(0, 64),
        }),
      ),
    { ...context, snapshotId: copy.id, zone },
  );
  const volumeId = created.VolumeId!;
  await waitAvailable(ctx, target, volumeId);
  const result: DrRestoreResult = {
    name,
    region,
    zone,
    volumeId,
    fromCopy: copy.id,
    sourceRegion: copy.sourceRegion,
    dataAsOf: new Date(copy.takenAt).toISOString(),
    rpoSeconds: Math.round((Date.now() - copy.takenAt) / 1000),
  };
  if (ctx.json) printJson(ctx, result);
  else ctx.io.stdout.write(`${volumeId} ${name} restored in ${zone} from ${copy.id} (data as of ${result.dataAsOf}, ${result.rpoSeconds}s ago)\n`);
  return ExitCode.ok;
}

async function refuseLiveVolumes(ctx: OpsContext, target: RegionTarget, name: string): Promise<void> {
  const out = await ctx.aws('DescribeVolumes', () =>
    target.ec2.send(
      new DescribeVolumesCommand({
        Filters: [
          { Name: `tag:${Tags.cluster}`, Values: [ctx.cluster] },
          { Name: `tag:${Tags.volume}`, Values: [name] },
        ],
      }),
    ),
  );
  const live = (out.Volumes ?? []).filter((v) => v.State !== 'deleting' && v.State !== 'deleted');
  if (live.length > 0)
    throw new VolumeConflictError(`volume ${name} already exists in ${target.region} (${live.map((v) => `${v.VolumeId} in ${v.AvailabilityZone}`).join(', ')}); remove it first or mount that one`, {
      volume: name,
      region: target.region,
    });
}

async function waitAvailable(ctx: OpsContext, target: RegionTarget, volumeId: string): Promise<void> {
  const bar = progressLine(ctx.io.stderr);
  for (let wait = 500; ; wait = Math.min(wait * 1.6, 10_000)) {
    const out = await ctx.aws('DescribeVolumes', () => target.ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'volume-id', Values: [volumeId] }] })), { volumeId });
    const state = out.Volumes?.[0]?.State;
    if (state === 'available') {
      bar.show(`volume ${volumeId} available`, 100);
      bar.done();
      return;
    }
    if (state === 'error') throw new CloudError(`volume ${volumeId} failed to create (state error)`, 'VolumeFailed', { volumeId });
    bar.show(`volume ${volumeId} ${state ?? 'not shown yet'}`, 0);
    if (ctx.io.signal.aborted) return bar.done();
    await pause(wait, ctx.io.signal);
  }
}
