import type { Tag, TagSpecification, Volume } from '@aws-sdk/client-ec2';
import { DEFAULT_BACKUP_RETAIN, EBS_LIMITS, EBS_TYPES, type EbsType, type Filesystem, type VolumeOptions } from '../volume-options.js';
import { readTaggedValues, type TaggedValues } from './tag-values.js';
import { Tags, nameTag } from './tags.js';

/** The attachment that matters: EBS volumes of our kind have at most one. */
export interface EbsAttachment {
  instanceId: string;
  state: string;
  device: string | undefined;
  /** EC2's AttachTime (ISO 8601): what tells this attachment from every other one of the volume. */
  attachTime: string | undefined;
}

/**
 * What Stowage knows about one of its EBS volumes, read from EC2's answer and the volume's tags:
 * the checked tag values (TaggedValues) and what EC2 itself says.
 */
export interface EbsVolume extends Omit<TaggedValues, 'problems'> {
  id: string;
  name: string;
  zone: string;
  state: string;
  size: number;
  type: string;
  iops: number | undefined;
  throughput: number | undefined;
  encrypted: boolean;
  createdAt: Date | undefined;
  attachment: EbsAttachment | undefined;
  blank: boolean;
  /** Formatted once (the mark), or made from a snapshot: its data must never be formatted away. */
  formatted: boolean;
  /** EC2's SnapshotId: the volume was restored from it. */
  restoredFrom: string | undefined;
  /** The attachment whose writes the volume holds (Tags.lastAttach). */
  lastAttach: string | undefined;
  /** The mover's last read barrier (Tags.readBarrier). */
  readBarrier: string | undefined;
  /** Tags whose values break the option rules; such a volume is shown but never mounted. */
  tagProblems: string[];
  /** Set by currentOf: every live volume of the name when more than one carries it (invariant 10). */
  duplicates?: EbsVolume[];
  /** Set by currentOf: the unfinished copy of this volume that a cross-zone move is making. */
  movingTo?: EbsVolume;
}

function tagMap(tags: Tag[] | undefined): Map<string, string> {
  return new Map((tags ?? []).filter((t) => t.Key !== undefined).map((t) => [t.Key!, t.Value ?? '']));
}

/** undefined for a volume that does not carry our cluster's tags. */
export function toEbsVolume(volume: Volume, cluster: string): EbsVolume | undefined {
  const tags = tagMap(volume.Tags);
  const name = tags.get(Tags.volume);
  if (tags.get(Tags.cluster) !== cluster || !name || tags.get(Tags.backing) !== 'relocatable' || !volume.VolumeId) return undefined;
  // A detached or detaching-done attachment is history; the live one decides who holds the volume.
  const live = (volume.Attachments ?? []).find((a) => a.State !== 'detached' && a.InstanceId);
  const { problems, ...checked } = readTaggedValues(name, tags);
  return {
    ...checked,
    id: volume.VolumeId,
    name,
    zone: volume.AvailabilityZone ?? '',
    state: volume.State ?? 'unknown',
    size: volume.Size ?? 0,
    type: volume.VolumeType ?? 'unknown',
    iops: volume.Iops,
    throughput: volume.Throughput,
    encrypted: volume.Encrypted ?? false,
    createdAt: volume.CreateTime,
    attachment: live ? { instanceId: live.InstanceId!, state: live.State ?? 'unknown', device: live.Device, attachTime: live.AttachTime?.toISOString() } : undefined,
    blank: tags.get(Tags.blank) === 'true',
    formatted: tags.get(Tags.formatted) === 'true',
    restoredFrom: volume.SnapshotId || undefined,
    lastAttach: tags.get(Tags.lastAttach) || undefined,
    readBarrier: tags.get(Tags.readBarrier) || undefined,
    tagProblems: problems,
  };
}

const GONE = new Set(['deleting', 'deleted']);

/** Nothing was ever written to it: created empty, never attached, never formatted. */
export function neverWritten(volume: EbsVolume): boolean {
  return volume.blank && !volume.formatted;
}

/** A copy made by a cross-zone move whose source still exists: the move has not committed yet. */
export function isUnfinishedCopy(volume: EbsVolume, all: EbsVolume[]): boolean {
  return volume.movedFrom !== undefined && all.some((v) => v.id === volume.movedFrom && !GONE.has(v.state));
}

/**
 * Several volumes can carry one name while a cross-zone move runs. A copy whose source still exists
 * is not the volume yet (the move commits by deleting the source); among the rest the highest
 * generation is the volume, and among equals the oldest (a duplicate born of a race loses).
 */
export function pickCurrent(volumes: EbsVolume[]): EbsVolume | undefined {
  const settled = volumes.filter((v) => !GONE.has(v.state) && !isUnfinishedCopy(v, volumes));
  return [...(settled.length > 0 ? settled : volumes)].sort(
    (a, b) => b.generation - a.generation || (a.createdAt?.getTime() ?? 0) - (b.createdAt?.getTime() ?? 0) || a.id.localeCompare(b.id),
  )[0];
}

/**
 * The live volumes carrying one name that no cross-zone move explains (two settled volumes: a
 * race between Creates), which Get and Mount refuse rather than let pickCurrent choose silently.
 */
export function liveDuplicates(volumes: EbsVolume[]): EbsVolume[] {
  const settled = volumes.filter((v) => !GONE.has(v.state) && !isUnfinishedCopy(v, volumes));
  return settled.length > 1 ? settled : [];
}

/** The volume of a name, with the copy an unfinished cross-zone move is making of it (Get shows both). */
export function currentOf(volumes: EbsVolume[]): EbsVolume | undefined {
  const current = pickCurrent(volumes);
  if (!current) return undefined;
  const copy = volumes.find((v) => v.movedFrom === current.id && isUnfinishedCopy(v, volumes));
  const duplicates = liveDuplicates(volumes);
  if (!copy && duplicates.length === 0) return current;
  return { ...current, ...(copy && { movingTo: copy }), ...(duplicates.length > 0 && { duplicates }) };
}

/** Invariant 10: a name two live volumes carry is refused, naming both (aws-ebs-csi-driver's ErrMultiDisks). */
export function describeDuplicates(name: string, duplicates: EbsVolume[]): string {
  return `volume ${name} is carried by ${duplicates.length} live EBS volumes (${duplicates.map((v) => `${v.id} in ${v.zone}, generation ${v.generation}`).join('; ')}); remove the one that is not the data (stowage gc lists them)`;
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
    uid: volume.rootOwner.uid,
    gid: volume.rootOwner.gid,
    mode: volume.rootOwner.mode,
    ...(volume.backup !== undefined && { backup: volume.backup }),
    backupretain: volume.backupRetain,
    ...(volume.drRegion !== undefined && { drregion: volume.drRegion }),
    ...(volume.initRate !== undefined && { initrate: volume.initRate }),
  };
}

const COMPARED_KEYS = [
  'size', 'ebstype', 'iops', 'throughput', 'encrypted', 'kmskeyid', 'snapshot', 'fs', 'mountopts', 'uid', 'gid', 'mode', 'backup', 'backupretain', 'drregion', 'initrate',
] as const;

/** `key=existing (asked requested)` for every option on which a Create disagrees with the volume. */
export function optionDifferences(requested: VolumeOptions, existing: Partial<VolumeOptions>): string[] {
  const show = (v: unknown): string => (v === undefined ? '(none)' : Array.isArray(v) ? v.join(',') || '(none)' : String(v));
  requested = { ...requested, backupretain: requested.backupretain ?? DEFAULT_BACKUP_RETAIN };
  return COMPARED_KEYS.filter((key) => JSON.stringify(requested[key]) !== JSON.stringify(existing[key])).map(
    (key) => `${key}=${show(existing[key])} (asked ${show(requested[key])})`,
  );
}

/** What a volume's tags record of its options (a Create's options, or the volume a move copies). */
export interface TaggedOptions {
  fs: Filesystem;
  mountopts: string[];
  kmskeyid?: string | undefined;
  snapshot?: string | undefined;
  backup?: string | undefined;
  backupretain?: number | undefined;
  drregion?: string | undefined;
  initrate?: number | undefined;
  uid?: number | undefined;
  gid?: number | undefined;
  mode?: string | undefined;
}

export function volumeTags(cluster: string, name: string, generation: number, options: TaggedOptions): Tag[] {
  return [
    { Key: Tags.cluster, Value: cluster },
    { Key: Tags.volume, Value: name },
    { Key: Tags.backing, Value: 'relocatable' },
    { Key: Tags.generation, Value: String(generation) },
    { Key: Tags.fs, Value: options.fs },
    { Key: Tags.mountopts, Value: options.mountopts.join(',') },
    ...(options.kmskeyid !== undefined ? [{ Key: Tags.kmskeyid, Value: options.kmskeyid }] : []),
    ...(options.snapshot !== undefined ? [{ Key: Tags.snapshot, Value: options.snapshot }] : []),
    ...(options.backup !== undefined ? [{ Key: Tags.backup, Value: options.backup }] : []),
    ...(options.backupretain !== undefined ? [{ Key: Tags.backupRetain, Value: String(options.backupretain) }] : []),
    ...(options.drregion !== undefined ? [{ Key: Tags.drRegion, Value: options.drregion }] : []),
    ...(options.initrate !== undefined ? [{ Key: Tags.initRate, Value: String(options.initrate) }] : []),
    ...(options.uid !== undefined ? [{ Key: Tags.rootOwner, Value: `${options.uid}:${options.gid ?? 0}:${options.mode ?? '0755'}` }] : []),
    nameTag(cluster, name),
  ];
}

/** The tagged options of an existing volume, for the copy a move makes of it. */
export function taggedOptionsOf(volume: EbsVolume): TaggedOptions {
  return {
    fs: volume.fs,
    mountopts: volume.mountopts,
    kmskeyid: volume.kmskeyid,
    snapshot: volume.snapshot,
    backup: volume.backup,
    backupretain: volume.backupRetain,
    drregion: volume.drRegion,
    initrate: volume.initRate,
    ...volume.rootOwner,
  };
}

export function volumeTagSpecification(tags: Tag[]): TagSpecification[] {
  return [{ ResourceType: 'volume', Tags: tags }];
}
