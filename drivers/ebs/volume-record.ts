import { createHash } from 'node:crypto';
import type { Tag, TagSpecification, Volume } from '@aws-sdk/client-ec2';
import { EBS_LIMITS, EBS_TYPES, FILESYSTEMS, type EbsType, type Filesystem, type VolumeOptions } from '../../plugin/options.js';

/** DESIGN.md "Tags": the cluster's source of truth. */
export const Tags = {
  cluster: 'stowage:cluster',
  volume: 'stowage:volume',
  backing: 'stowage:backing',
  generation: 'stowage:generation',
  fs: 'stowage:fs',
  mountopts: 'stowage:mountopts',
  /** As the user gave them: EC2 reports a KMS key as an ARN, and a restored volume's SnapshotId is not an option. */
  kmskeyid: 'stowage:kmskeyid',
  snapshot: 'stowage:snapshot',
} as const;

/** The attachment that matters: EBS volumes of our kind have at most one. */
export interface EbsAttachment {
  instanceId: string;
  state: string;
  device: string | undefined;
}

/** What Stowage knows about one of its EBS volumes, read from EC2's answer and the volume's tags. */
export interface EbsVolume {
  id: string;
  name: string;
  zone: string;
  state: string;
  size: number;
  type: string;
  iops: number | undefined;
  throughput: number | undefined;
  encrypted: boolean;
  generation: number;
  fs: Filesystem;
  mountopts: string[];
  kmskeyid: string | undefined;
  snapshot: string | undefined;
  createdAt: Date | undefined;
  attachment: EbsAttachment | undefined;
}

function tagMap(tags: Tag[] | undefined): Map<string, string> {
  return new Map((tags ?? []).filter((t) => t.Key !== undefined).map((t) => [t.Key!, t.Value ?? '']));
}

/** undefined for a volume that does not carry our cluster's tags. */
export function toEbsVolume(volume: Volume, cluster: string): EbsVolume | undefined {
  const tags = tagMap(volume.Tags);
  const name = tags.get(Tags.volume);
  if (tags.get(Tags.cluster) !== cluster || !name || tags.get(Tags.backing) !== 'relocatable' || !volume.VolumeId) return undefined;
  const fs = tags.get(Tags.fs);
  // A detached or detaching-done attachment is history; the live one decides who holds the volume.
  const live = (volume.Attachments ?? []).find((a) => a.State !== 'detached' && a.InstanceId);
  return {
    id: volume.VolumeId,
    name,
    zone: volume.AvailabilityZone ?? '',
    state: volume.State ?? 'unknown',
    size: volume.Size ?? 0,
    type: volume.VolumeType ?? 'unknown',
    iops: volume.Iops,
    throughput: volume.Throughput,
    encrypted: volume.Encrypted ?? false,
    generation: Number(tags.get(Tags.generation) ?? '1') || 1,
    fs: (FILESYSTEMS as readonly string[]).includes(fs ?? '') ? (fs as Filesystem) : 'ext4',
    mountopts: (tags.get(Tags.mountopts) ?? '').split(',').filter((o) => o !== ''),
    kmskeyid: tags.get(Tags.kmskeyid) || undefined,
    snapshot: tags.get(Tags.snapshot) || undefined,
    createdAt: volume.CreateTime,
    attachment: live ? { instanceId: live.InstanceId!, state: live.State ?? 'unknown', device: live.Device } : undefined,
  };
}

/**
 * Several volumes can carry one name while a cross-zone move runs (one per generation): the highest
 * generation is the volume, and among equals the oldest (a duplicate born of a race loses).
 */
export function pickCurrent(volumes: EbsVolume[]): EbsVolume | undefined {
  return [...volumes].sort(
    (a, b) => b.generation - a.generation || (a.createdAt?.getTime() ?? 0) - (b.createdAt?.getTime() ?? 0),
  )[0];
}

/** The options a volume was created with, as far as EC2 and its tags tell. */
export function optionsOf(volume: EbsVolume): Partial<VolumeOptions> {
  const type = (EBS_TYPES as readonly string[]).includes(volume.type) ? (volume.type as EbsType) : undefined;
  const limits = type ? EBS_LIMITS[type] : undefined;
  return {
    backing: 'relocatable',
    size: volume.size,
    ...(type && { ebstype: type }),
    // gp2 and friends report IOPS too, but they are not an option there.
    ...(limits?.iops && volume.iops !== undefined && { iops: volume.iops }),
    ...(limits?.throughput && volume.throughput !== undefined && { throughput: volume.throughput }),
    encrypted: volume.encrypted,
    ...(volume.kmskeyid !== undefined && { kmskeyid: volume.kmskeyid }),
    ...(volume.snapshot !== undefined && { snapshot: volume.snapshot }),
    fs: volume.fs,
    mountopts: volume.mountopts,
  };
}

const COMPARED_KEYS = ['size', 'ebstype', 'iops', 'throughput', 'encrypted', 'kmskeyid', 'snapshot', 'fs', 'mountopts'] as const;

/** `key=existing (asked requested)` for every option on which a Create disagrees with the volume. */
export function optionDifferences(requested: VolumeOptions, existing: Partial<VolumeOptions>): string[] {
  const show = (v: unknown): string => (v === undefined ? '(none)' : Array.isArray(v) ? v.join(',') || '(none)' : String(v));
  return COMPARED_KEYS.filter((key) => JSON.stringify(requested[key]) !== JSON.stringify(existing[key])).map(
    (key) => `${key}=${show(existing[key])} (asked ${show(requested[key])})`,
  );
}

export function volumeTags(cluster: string, name: string, generation: number, options: VolumeOptions): Tag[] {
  return [
    { Key: Tags.cluster, Value: cluster },
    { Key: Tags.volume, Value: name },
    { Key: Tags.backing, Value: 'relocatable' },
    { Key: Tags.generation, Value: String(generation) },
    { Key: Tags.fs, Value: options.fs },
    { Key: Tags.mountopts, Value: options.mountopts.join(',') },
    ...(options.kmskeyid !== undefined ? [{ Key: Tags.kmskeyid, Value: options.kmskeyid }] : []),
    ...(options.snapshot !== undefined ? [{ Key: Tags.snapshot, Value: options.snapshot }] : []),
    { Key: 'Name', Value: `stowage/${cluster}/${name}` },
  ];
}

export function volumeTagSpecification(tags: Tag[]): TagSpecification[] {
  return [{ ResourceType: 'volume', Tags: tags }];
}

/**
 * Deterministic, so a retried or concurrent Create of one volume cannot make two (≤ 64 chars: hex
 * sha256). `reuse` > 0 after a previous volume of this name was deleted: EC2 would hand back the
 * deleted volume for the old token.
 */
export function clientToken(cluster: string, name: string, generation: number, reuse = 0): string {
  const parts = [cluster, name, String(generation), ...(reuse > 0 ? [String(reuse)] : [])];
  return createHash('sha256').update(parts.join('/')).digest('hex');
}
