import { DescribeAvailabilityZonesCommand, DescribeSnapshotsCommand, DescribeVolumesCommand, type Snapshot, type Tag } from '@aws-sdk/client-ec2';
import { CloudError } from '../../core/errors.js';
import { DescribeAccessPointsCommand } from '@aws-sdk/client-efs';
import { Tags } from '../../core/schema/tags.js';
import { pickCurrent, toEbsVolume, type EbsVolume } from '../../core/schema/ebs-volume.js';
import type { OpsContext, RegionTarget } from './context.js';
import { allPages } from '../../aws/pages.js';

/** A relocatable volume with its region and every tag (move history lives in tags). */
export interface VolumeRecord extends EbsVolume {
  region: string;
  tags: Record<string, string>;
}

export interface SnapshotRecord {
  id: string;
  region: string;
  name: string;
  volumeId: string | undefined;
  state: string;
  /** 0–100 */
  progress: number;
  startedAt: Date | undefined;
  generation: number;
  /** GiB, as EC2 records it. */
  volumeSize: number | undefined;
  tags: Record<string, string>;
}

/** A shared volume in access point mode: the access point is the volume. */
export interface AccessPointRecord {
  id: string;
  region: string;
  name: string;
  fileSystemId: string;
  state: string;
  tags: Record<string, string>;
}

/** Everything of the cluster in one region, from one paginated, tag-filtered Describe per kind. */
export interface RegionInventory {
  region: string;
  volumes: VolumeRecord[];
  snapshots: SnapshotRecord[];
  accessPoints: AccessPointRecord[];
}

function tagRecord(tags: Tag[] | undefined): Record<string, string> {
  return Object.fromEntries((tags ?? []).filter((t) => t.Key !== undefined).map((t) => [t.Key!, t.Value ?? '']));
}

export async function describeVolumes(ctx: OpsContext, t: RegionTarget, name?: string): Promise<VolumeRecord[]> {
  const found = await allPages(
    (token) =>
      ctx.aws(
        'DescribeVolumes',
        () =>
          t.ec2.send(
            new DescribeVolumesCommand({
              Filters: [{ Name: `tag:${Tags.cluster}`, Values: [ctx.cluster] }, ...(name ? [{ Name: `tag:${Tags.volume}`, Values: [name] }] : [])],
              MaxResults: 500,
              NextToken: token,
            }),
          ),
        { region: t.region },
      ),
    (page) => page.Volumes,
  );
  return found.flatMap((v) => {
    const volume = toEbsVolume(v, ctx.cluster);
    return volume ? [{ ...volume, region: t.region, tags: tagRecord(v.Tags) }] : [];
  });
}

function toSnapshotRecord(s: Snapshot, region: string): SnapshotRecord {
  const tags = tagRecord(s.Tags);
  return {
    id: s.SnapshotId ?? '',
    region,
    name: tags[Tags.volume] ?? '',
    volumeId: s.VolumeId,
    state: s.State ?? 'unknown',
    progress: Number.parseInt(s.Progress ?? '0', 10) || 0,
    startedAt: s.StartTime,
    generation: Number(tags[Tags.generation] ?? '1') || 1,
    volumeSize: s.VolumeSize,
    tags,
  };
}

async function describeSnapshots(ctx: OpsContext, t: RegionTarget, name?: string): Promise<SnapshotRecord[]> {
  const found = await allPages(
    (token) =>
      ctx.aws(
        'DescribeSnapshots',
        () =>
          t.ec2.send(
            new DescribeSnapshotsCommand({
              OwnerIds: ['self'],
              Filters: [{ Name: `tag:${Tags.cluster}`, Values: [ctx.cluster] }, ...(name ? [{ Name: `tag:${Tags.volume}`, Values: [name] }] : [])],
              MaxResults: 1000,
              NextToken: token,
            }),
          ),
        { region: t.region },
      ),
    (page) => page.Snapshots?.map((s) => toSnapshotRecord(s, t.region)),
  );
  // Newest first: retention and "last snapshot" read from the front.
  return found.sort((a, b) => (b.startedAt?.getTime() ?? 0) - (a.startedAt?.getTime() ?? 0) || b.id.localeCompare(a.id));
}

/** EFS has no tag filter: one paginated call for the account's access points, then ours by tag. */
async function describeAccessPoints(ctx: OpsContext, t: RegionTarget, name?: string): Promise<AccessPointRecord[]> {
  const found = await allPages(
    (token) => ctx.aws('DescribeAccessPoints', () => t.efs.send(new DescribeAccessPointsCommand({ MaxResults: 1000, NextToken: token })), { region: t.region }),
    (page) => page.AccessPoints,
  );
  return found.flatMap((ap) => {
    const tags = Object.fromEntries((ap.Tags ?? []).map((tag) => [tag.Key, tag.Value]));
    const volume = tags[Tags.volume];
    if (tags[Tags.cluster] !== ctx.cluster || !volume || (name && volume !== name) || !ap.AccessPointId) return [];
    return [{ id: ap.AccessPointId, region: t.region, name: volume, fileSystemId: ap.FileSystemId ?? '', state: ap.LifeCycleState ?? 'unknown', tags }];
  });
}

/** The cluster's resources in one region (only those of `name` when given): three kinds, in parallel. */
export async function readRegion(ctx: OpsContext, t: RegionTarget, name?: string): Promise<RegionInventory> {
  const [volumes, snapshots, accessPoints] = await Promise.all([
    describeVolumes(ctx, t, name),
    describeSnapshots(ctx, t, name),
    describeAccessPoints(ctx, t, name),
  ]);
  return { region: t.region, volumes, snapshots, accessPoints };
}

const GONE = new Set(['deleting', 'deleted']);

/** The volumes of one name in one region: the current one and the others (a move's copy, or leftovers). */
export interface VolumeGroup {
  name: string;
  region: string;
  current: VolumeRecord;
  others: VolumeRecord[];
}

export function groupVolumes(volumes: VolumeRecord[]): VolumeGroup[] {
  const byKey = new Map<string, VolumeRecord[]>();
  for (const v of volumes) {
    if (GONE.has(v.state)) continue;
    const key = `${v.region}\u0000${v.name}`;
    byKey.set(key, [...(byKey.get(key) ?? []), v]);
  }
  return [...byKey.values()].map((group) => {
    const current = pickCurrent(group) as VolumeRecord;
    return { name: current.name, region: current.region, current, others: group.filter((v) => v !== current) };
  });
}

/** The region's first available zone (by name): where a volume with no zone of its own is made unless --zone says. */
export async function firstZone(ctx: OpsContext, target: RegionTarget): Promise<string> {
  const out = await ctx.aws('DescribeAvailabilityZones', () =>
    target.ec2.send(new DescribeAvailabilityZonesCommand({ Filters: [{ Name: 'state', Values: ['available'] }] })),
  );
  const zone = out.AvailabilityZones?.map((z) => z.ZoneName ?? '').filter(Boolean).sort()[0];
  if (!zone) throw new CloudError(`${target.region} shows no available zone; pass --zone`, 'NoZone', { region: target.region });
  return zone;
}
