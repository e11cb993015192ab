import { DescribeVolumeStatusCommand, DescribeVolumesModificationsCommand, type EC2Client, type VolumeModification } from '@aws-sdk/client-ec2';
import { Ec2Code, hasCode } from './errors.js';

/**
 * What EC2 is doing to a volume after its creation: an Elastic Volumes modification (`stowage
 * modify`) and, for a volume restored from a snapshot, the loading of its blocks. Read by Status
 * (the EBS driver), `stowage inspect` and `stowage modify`.
 */

/**
 * EC2's cooldown between two modifications of one volume: six hours from the start of the last
 * one, which must have completed (ModifyVolume, EC2 API Reference). The reference now also allows
 * four in a rolling 24 hours; six hours is the stricter reading and the one promised to operators.
 */
export const MODIFICATION_COOLDOWN_MS = 6 * 3600_000;

/** One AWS call, retried and bounded as its caller does (callAws with the caller's deadline). */
export type Send = <T>(operation: string, send: () => Promise<T>) => Promise<T>;

export interface ModificationView {
  state: 'modifying' | 'optimizing' | 'completed' | 'failed';
  progress: number;
  startTime: Date | undefined;
  endTime: Date | undefined;
  target: { size?: number; type?: string; iops?: number; throughput?: number };
  original: { size?: number; type?: string; iops?: number; throughput?: number };
  /** When EC2 takes the next modification: not before the cooldown ends, and not before this one completes. */
  nextAllowedAt: Date | undefined;
  statusMessage: string | undefined;
}

export interface InitializationView {
  state: 'initializing' | 'completed';
  /** `provisioned-rate` (the volume's initrate), `default`, or `volume-copy`. */
  type: string | undefined;
  progress: number | undefined;
  secondsLeft: number | undefined;
}

export function toModificationView(m: VolumeModification): ModificationView {
  const start = m.StartTime;
  return {
    state: (m.ModificationState ?? 'modifying') as ModificationView['state'],
    progress: m.ModificationState === 'completed' ? 100 : (m.Progress ?? 0),
    startTime: start,
    endTime: m.EndTime,
    target: { size: m.TargetSize, type: m.TargetVolumeType, iops: m.TargetIops, throughput: m.TargetThroughput },
    original: { size: m.OriginalSize, type: m.OriginalVolumeType, iops: m.OriginalIops, throughput: m.OriginalThroughput },
    nextAllowedAt: start && new Date(start.getTime() + MODIFICATION_COOLDOWN_MS),
    statusMessage: m.StatusMessage,
  };
}

/** The volume's latest modification; undefined when it was never modified. */
export async function readModification(ec2: EC2Client, volumeId: string, send: Send): Promise<ModificationView | undefined> {
  try {
    const out = await send('DescribeVolumesModifications', () => ec2.send(new DescribeVolumesModificationsCommand({ VolumeIds: [volumeId] })));
    const latest = (out.VolumesModifications ?? []).sort((a, b) => (b.StartTime?.getTime() ?? 0) - (a.StartTime?.getTime() ?? 0))[0];
    return latest && toModificationView(latest);
  } catch (err) {
    // EC2's answer for a volume that was never modified.
    if (hasCode(err, Ec2Code.ModificationNotFound)) return undefined;
    throw err;
  }
}

/** How far a volume restored from a snapshot has loaded its blocks; undefined for one EC2 reports nothing of (a blank volume). */
export async function readInitialization(ec2: EC2Client, volumeId: string, send: Send): Promise<InitializationView | undefined> {
  const out = await send('DescribeVolumeStatus', () => ec2.send(new DescribeVolumeStatusCommand({ VolumeIds: [volumeId] })));
  const item = out.VolumeStatuses?.[0];
  const detail = item?.VolumeStatus?.Details?.find((d) => d.Name === 'initialization-state');
  const init = item?.InitializationStatusDetails;
  if (!detail && !init) return undefined;
  const progress = init?.Progress;
  return {
    state: detail?.Status === 'completed' || progress === 100 ? 'completed' : 'initializing',
    type: init?.InitializationType,
    progress,
    secondsLeft: init?.EstimatedTimeToCompleteInSeconds,
  };
}

/** `optimizing 60%: 10 → 20 GiB, gp3, 3000 IOPS, 125 MiB/s (started 2026-…)`, as an operator reads it. */
export function describeModification(m: ModificationView): string {
  const t = m.target;
  const o = m.original;
  const parts = [
    o.size !== t.size ? `${o.size} → ${t.size} GiB` : `${t.size} GiB`,
    o.type !== t.type ? `${o.type} → ${t.type}` : t.type,
    ...(t.iops !== undefined ? [o.iops !== t.iops ? `${o.iops ?? '-'} → ${t.iops} IOPS` : `${t.iops} IOPS`] : []),
    ...(t.throughput !== undefined ? [o.throughput !== t.throughput ? `${o.throughput ?? '-'} → ${t.throughput} MiB/s` : `${t.throughput} MiB/s`] : []),
  ];
  const when = m.startTime ? ` (started ${m.startTime.toISOString()}${m.endTime ? `, ended ${m.endTime.toISOString()}` : ''})` : '';
  return `${m.state}${m.state === 'completed' ? '' : ` ${m.progress}%`}: ${parts.join(', ')}${when}${m.statusMessage ? `: ${m.statusMessage}` : ''}`;
}

/** `initializing 40% (provisioned-rate, about 12 s left)` or `completed`. */
export function describeInitialization(i: InitializationView): string {
  if (i.state === 'completed') return `completed${i.type ? ` (${i.type})` : ''}`;
  const details = [i.type, ...(i.secondsLeft !== undefined ? [`about ${i.secondsLeft} s left`] : [])].filter(Boolean);
  return `initializing${i.progress !== undefined ? ` ${i.progress}%` : ''}${details.length ? ` (${details.join(', ')})` : ''}`;
}
