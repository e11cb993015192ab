import {
  CreateSnapshotCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeleteTagsCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  type EC2Client,
  type Snapshot,
} from '@aws-sdk/client-ec2';
import { callAws, type RetryPolicy } from '../aws/call.js';
import type { CallCounter } from '../aws/call-counter.js';
import { delay } from '../aws/delay.js';
import { isNotFound } from '../aws/errors.js';
import { Tags, toEbsVolume, type EbsVolume } from '../drivers/ebs/volume-record.js';
import { CloudError, PendingError, type ErrorContext } from '../plugin/errors.js';
import type { Logger } from '../plugin/log.js';
import { allPages } from '../aws/pages.js';

/** Tags only snapshots carry; the cluster and volume tags are the volumes' own (DESIGN.md "Tags"). */
export const SnapshotTags = {
  /** The volume id whose data the snapshot holds. */
  source: 'stowage:source-volume',
  /** Why it was taken: `unmount` (invariant 6) or `move` (invariant 5). */
  reason: 'stowage:snapshot-reason',
} as const;

export type SnapshotReason = 'unmount' | 'move';
const OWN_REASONS: readonly string[] = ['unmount', 'move'] satisfies SnapshotReason[];

/** One of Stowage's snapshots, as read from EC2 and its tags. */
export interface StoredSnapshot {
  id: string;
  state: string;
  /** 0–100. */
  percent: number;
  source: string | undefined;
  /** Why it was taken; `operator` ones (stowage snapshot) are backups that retention and Remove leave alone. */
  reason: string | undefined;
  /** The generation of the volume it captures. */
  generation: number;
  startedAt: number;
}

export interface Step {
  deadline: number;
  log: Logger;
}

export interface SnapshotStoreDeps {
  ec2: EC2Client;
  counter: CallCounter;
  cluster: string;
  retry?: RetryPolicy;
  /** First poll of a pending snapshot; later ones back off ×1.6 up to 15 s. */
  pollInitialMs: number;
}

const MAX_POLL_MS = 15_000;

function toStored(s: Snapshot): StoredSnapshot {
  const tags = new Map((s.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
  return {
    id: s.SnapshotId ?? '',
    state: s.State ?? 'unknown',
    percent: Number.parseInt(s.Progress ?? '0', 10) || 0,
    source: tags.get(SnapshotTags.source),
    reason: tags.get(SnapshotTags.reason),
    generation: Number(tags.get(Tags.generation) ?? '1') || 1,
    startedAt: s.StartTime?.getTime() ?? 0,
  };
}

/**
 * Stowage's EBS snapshots and the volume tag that says which snapshot holds a volume's current data
 * (`stowage:snapshot-current`). Every call goes through callAws; nothing here knows about mounts.
 */
export class SnapshotStore {
  constructor(private readonly deps: SnapshotStoreDeps) {}

  /** Starts a snapshot of a detached volume, tagged with the name, the source and the generation it captures. */
  async create(volume: EbsVolume, reason: SnapshotReason, step: Step): Promise<StoredSnapshot> {
    const tags = [
      { Key: Tags.cluster, Value: this.deps.cluster },
      { Key: Tags.volume, Value: volume.name },
      { Key: Tags.backing, Value: 'relocatable' },
      { Key: Tags.generation, Value: String(volume.generation) },
      { Key: SnapshotTags.source, Value: volume.id },
      { Key: SnapshotTags.reason, Value: reason },
      { Key: 'Name', Value: `stowage/${this.deps.cluster}/${volume.name}` },
    ];
    const out = await this.aws('CreateSnapshot', step, { volumeId: volume.id }, () =>
      this.deps.ec2.send(
        new CreateSnapshotCommand({
          VolumeId: volume.id,
          Description: `stowage ${reason} snapshot of ${volume.name} generation ${volume.generation}`,
          TagSpecifications: [{ ResourceType: 'snapshot', Tags: tags }],
        }),
      ),
    );
    const snapshot = toStored({ ...out, Tags: out.Tags ?? tags });
    step.log.info({ volumeId: volume.id, snapshotId: snapshot.id, reason, generation: volume.generation }, 'snapshot started');
    return snapshot;
  }

  /** undefined when it does not exist (any more). */
  async find(snapshotId: string, step: Step): Promise<StoredSnapshot | undefined> {
    try {
      const out = await this.aws('DescribeSnapshots', step, { snapshotId }, () =>
        this.deps.ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] })),
      );
      const found = out.Snapshots?.[0];
      return found ? toStored(found) : undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The snapshots the plugin took of one volume name to move it (not operator backups), newest first. */
  async movingAids(name: string, step: Step): Promise<StoredSnapshot[]> {
    return (await this.ofName(name, step)).filter((s) => OWN_REASONS.includes(s.reason ?? ''));
  }

  /** Every Stowage snapshot of one volume name, newest first (one tag-filtered, paginated call). */
  async ofName(name: string, step: Step): Promise<StoredSnapshot[]> {
    const found = await allPages(
      (token) =>
        this.aws('DescribeSnapshots', step, { volume: name }, () =>
          this.deps.ec2.send(
            new DescribeSnapshotsCommand({
              OwnerIds: ['self'],
              Filters: [
                { Name: `tag:${Tags.cluster}`, Values: [this.deps.cluster] },
                { Name: `tag:${Tags.volume}`, Values: [name] },
              ],
              MaxResults: 1000,
              NextToken: token,
            }),
          ),
        ),
      (page) => page.Snapshots?.map(toStored),
    );
    return found.sort((a, b) => b.startedAt - a.startedAt || b.id.localeCompare(a.id));
  }

  /** Polls until `completed`, reporting progress; a snapshot in `error` (or gone) is a CloudError. */
  async waitCompleted(snapshotId: string, step: Step, onProgress: (percent: number) => void): Promise<StoredSnapshot> {
    for (let wait = this.deps.pollInitialMs; ; wait = Math.min(wait * 1.6, MAX_POLL_MS)) {
      const now = await this.find(snapshotId, step);
      if (!now) throw new CloudError(`snapshot ${snapshotId} disappeared before it completed`, 'InvalidSnapshot.NotFound', { snapshotId });
      if (now.state === 'completed') return now;
      if (now.state === 'error') throw new CloudError(`EBS snapshot ${snapshotId} failed (state error)`, 'SnapshotFailed', { snapshotId });
      onProgress(now.percent);
      if (Date.now() >= step.deadline) {
        throw new PendingError(`snapshot ${snapshotId} is still pending (${now.percent}%); it goes on`, { snapshotId });
      }
      await delay(Math.min(wait, step.deadline - Date.now()));
    }
  }

  async delete(snapshotId: string, step: Step): Promise<void> {
    await this.aws('DeleteSnapshot', step, { snapshotId }, () => this.deps.ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }))).catch(
      (err: unknown) => {
        if (!isNotFound(err)) throw err;
      },
    );
    step.log.info({ snapshotId }, 'snapshot deleted');
  }

  /**
   * Records that `snapshotId` holds the volume's current data, then reads the volume again: if it got
   * attached meanwhile (its data may change, and the attach may have cleared tags before ours landed),
   * the record is taken back. Returns the snapshot the volume names as current afterwards (another
   * mover's, when two raced), or undefined.
   */
  async markCurrent(volume: EbsVolume, snapshotId: string, step: Step): Promise<string | undefined> {
    const context = { volumeId: volume.id, snapshotId };
    await this.aws('CreateTags', step, context, () =>
      this.deps.ec2.send(new CreateTagsCommand({ Resources: [volume.id], Tags: [{ Key: Tags.snapshotCurrent, Value: snapshotId }] })),
    );
    const now = await this.volume(volume.id, step);
    if (now?.attachment) {
      step.log.warn({ ...context, instance: now.attachment.instanceId }, 'volume was attached while its snapshot started; the snapshot is not its current data');
      await this.forget(volume.id, step);
      return undefined;
    }
    return now?.snapshotCurrent;
  }

  /** Before an attach: no snapshot holds the data any more, and the volume is no longer blank. */
  async forget(volumeId: string, step: Step): Promise<void> {
    await this.aws('DeleteTags', step, { volumeId }, () =>
      this.deps.ec2.send(new DeleteTagsCommand({ Resources: [volumeId], Tags: [{ Key: Tags.snapshotCurrent }, { Key: Tags.blank }] })),
    );
  }

  /**
   * Retention: keeps the newest `keep` completed snapshots the plugin took of a name and deletes the
   * older ones. Pending snapshots (a move may be waiting on one), `protect`ed ones (named current by a
   * volume) and operator backups stay.
   */
  async prune(name: string, keep: number, protect: ReadonlySet<string>, step: Step): Promise<number> {
    const all = await this.movingAids(name, step);
    // Only completed snapshots count: a pending one cannot restore anything yet.
    const completed = all.filter((s) => s.state === 'completed');
    const doomed = completed.slice(keep).filter((s) => !protect.has(s.id));
    for (const s of doomed) await this.delete(s.id, step);
    if (doomed.length > 0) step.log.info({ deleted: doomed.map((s) => s.id), kept: all.length - doomed.length, keep }, 'old snapshots deleted (retention)');
    return doomed.length;
  }

  /** The volume as EC2 has it now (undefined: gone). */
  async volume(volumeId: string, step: Step): Promise<EbsVolume | undefined> {
    const out = await this.aws('DescribeVolumes', step, { volumeId }, () =>
      this.deps.ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'volume-id', Values: [volumeId] }] })),
    );
    const found = out.Volumes?.[0];
    return found && toEbsVolume(found, this.deps.cluster);
  }

  private aws<T>(operation: string, step: Step, context: ErrorContext, send: () => Promise<T>): Promise<T> {
    return callAws(this.deps.counter, operation, send, {
      deadline: step.deadline,
      log: step.log,
      context,
      ...(this.deps.retry && { retry: this.deps.retry }),
    });
  }
}
