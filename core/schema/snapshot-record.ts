import type { Snapshot, Tag } from '@aws-sdk/client-ec2';
import { Tags, nameTag, type SnapshotReason } from './tags.js';

/** One of Stowage's snapshots, as read from EC2 and its tags. */
export interface StoredSnapshot {
  id: string;
  state: string;
  /** 0–100. */
  percent: number;
  source: string | undefined;
  /** Why it was taken; `operator` ones (stowage snapshot) are backups that retention and Remove leave alone. */
  reason: string | undefined;
  /** The source's last attachment when it was taken (Tags.coversAttach). */
  coversAttach: string | undefined;
  /** The generation of the volume it captures. */
  generation: number;
  /** Kept by `stowage restore` of the volume it holds: the snapshot that volume was replaced from (Tags.replacedBy). */
  replacedBy: string | undefined;
  startedAt: number;
}

export function toStoredSnapshot(s: Snapshot): StoredSnapshot {
  const tags = new Map((s.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
  return {
    id: s.SnapshotId ?? '',
    state: s.State ?? 'unknown',
    percent: Number.parseInt(s.Progress ?? '0', 10) || 0,
    source: tags.get(Tags.sourceVolume),
    reason: tags.get(Tags.snapshotReason),
    coversAttach: tags.get(Tags.coversAttach) || undefined,
    generation: Number(tags.get(Tags.generation) ?? '1') || 1,
    replacedBy: tags.get(Tags.replacedBy) || undefined,
    startedAt: s.StartTime?.getTime() ?? 0,
  };
}

/** The tags every Stowage snapshot carries, whoever takes it (plugin or operator). */
export function snapshotTags(cluster: string, volume: { name: string; id: string; generation: number; lastAttach: string | undefined }, reason: SnapshotReason): Tag[] {
  return [
    { Key: Tags.cluster, Value: cluster },
    { Key: Tags.volume, Value: volume.name },
    { Key: Tags.backing, Value: 'relocatable' },
    { Key: Tags.generation, Value: String(volume.generation) },
    { Key: Tags.sourceVolume, Value: volume.id },
    { Key: Tags.snapshotReason, Value: reason },
    ...(volume.lastAttach !== undefined ? [{ Key: Tags.coversAttach, Value: volume.lastAttach }] : []),
    nameTag(cluster, volume.name),
  ];
}
