import type { Snapshot, Tag } from '@aws-sdk/client-ec2';
import { region, snapshotId } from '../option-rules.js';
import { StowageError } from '../errors.js';
import type { EbsVolume } from './ebs-volume.js';
import { taggedOptionsOf, volumeTags } from './ebs-volume.js';
import { snapshotTags, toStoredSnapshot, type StoredSnapshot } from './snapshot-record.js';
import { readTaggedValues, type TaggedValues } from './tag-values.js';
import { Tags } from './tags.js';
import { ebsConfigTags, readRestorable } from './restorable.js';
import type { EbsConfig } from '../ebs-config.js';

/** A backup copied to the DR region, as read there from EC2 and its tags (which are input: checked). */
export interface DrCopyRecord extends StoredSnapshot {
  name: string;
  /** Where the backup was taken, and which backup it was. */
  sourceRegion: string | undefined;
  sourceSnapshot: string | undefined;
  /** Epoch ms: the start of the backup it copies, the moment whose data it holds (its RPO); 0 if unknown. */
  takenAt: number;
  /** The volume's options as the copy recorded them, for a restore without the source region. */
  options: TaggedValues;
  /** Its EBS type, IOPS and throughput; undefined for a copy made before they were recorded. */
  config: EbsConfig | undefined;
}

export function toDrCopyRecord(s: Snapshot): DrCopyRecord {
  const tags = new Map((s.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
  const stored = toStoredSnapshot(s);
  const name = tags.get(Tags.volume) ?? '';
  const options = readTaggedValues(name, tags);
  const checked = <T>(key: string, rule: (v: string) => T): T | undefined => {
    const value = tags.get(key);
    if (value === undefined || value === '') return undefined;
    try {
      return rule(value);
    } catch (err) {
      options.problems.push(`${key}=${JSON.stringify(value.slice(0, 100))}: ${err instanceof StowageError ? err.message : String(err)}`);
      return undefined;
    }
  };
  const takenAt =
    checked(Tags.takenAt, (v) => {
      const ms = Date.parse(v);
      if (!/^\d{4}-\d\d-\d\dT/.test(v) || Number.isNaN(ms)) throw new Error('not an ISO 8601 time');
      return ms;
    }) ?? stored.startedAt;
  const recorded = readRestorable(tags, s.VolumeSize);
  options.problems.push(...(recorded?.values.problems.filter((p) => !options.problems.includes(p)) ?? []));
  return {
    ...stored,
    name,
    config: recorded?.config,
    sourceRegion: checked(Tags.sourceRegion, (v) => region(Tags.sourceRegion, v)),
    sourceSnapshot: checked(Tags.sourceSnapshot, (v) => snapshotId(Tags.sourceSnapshot, v)),
    takenAt,
    options,
  };
}

/** Newest data first: by the backup's time, then by when the copy started. */
export function newestDataFirst<T extends DrCopyRecord>(copies: readonly T[]): T[] {
  return [...copies].sort((a, b) => b.takenAt - a.takenAt || b.startedAt - a.startedAt || b.id.localeCompare(a.id));
}

/**
 * The tags of the copy of `backup` in the DR region: those of every Stowage snapshot (reason
 * `dr-copy`), where it came from, and the volume's options except those that name resources of the
 * source region (its KMS key, the snapshot it was made from) or the DR region itself.
 */
export function drCopyTags(cluster: string, volume: EbsVolume, backup: StoredSnapshot, sourceRegion: string): Tag[] {
  const options = { ...taggedOptionsOf(volume), kmskeyid: undefined, snapshot: undefined, drregion: undefined };
  const merged = new Map<string, string>();
  for (const t of [
    ...snapshotTags(cluster, { name: volume.name, id: volume.id, generation: backup.generation, lastAttach: backup.coversAttach }, 'dr-copy'),
    ...volumeTags(cluster, volume.name, backup.generation, options),
    { Key: Tags.sourceRegion, Value: sourceRegion },
    { Key: Tags.sourceSnapshot, Value: backup.id },
    { Key: Tags.takenAt, Value: new Date(backup.startedAt).toISOString() },
    ...ebsConfigTags(volume),
  ])
    merged.set(t.Key!, t.Value!);
  return [...merged].map(([Key, Value]) => ({ Key, Value }));
}
