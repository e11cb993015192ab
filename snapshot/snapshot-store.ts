import {
  CreateSnapshotCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeleteTagsCommand,
  DescribeSnapshotsCommand,
  type EC2Client,
  type Tag,
} from '@aws-sdk/client-ec2';
import { callInStep, type RetryPolicy } from '../aws/call.js';
import type { CallCounter } from '../aws/call-counter.js';
import { delay } from '../core/delay.js';
import { isNotFound } from '../aws/errors.js';
import type { EbsVolume } from '../core/schema/ebs-volume.js';
import { VolumeReads } from '../aws/volume-reads.js';
import { CloudError, PendingError, type ErrorContext } from '../core/errors.js';
import type { OperationContext } from '../core/context.js';
import { allPages } from '../aws/pages.js';
import { Tags, type SnapshotReason } from '../core/schema/tags.js';
import { backupsToPrune, isMovingAid, snapshotsToPrune } from './retention.js';
import { snapshotTags, toStoredSnapshot, type StoredSnapshot } from '../core/schema/snapshot-record.js';
import { restorableTags } from '../core/schema/restorable.js';

export interface SnapshotStoreDeps {
  ec2: EC2Client;
  counter: CallCounter;
  cluster: string;
  retry?: RetryPolicy;
  /** First poll of a pending snapshot; later ones back off ×1.6 up to 15 s. */
  pollInitialMs: number;
}

const MAX_POLL_MS = 15_000;
/** A snapshot unseen this long is gone, not merely not shown yet by a lagging Describe. */
const MISSING_MS = 10_000;
const MISSING_POLL_MS = 500;

/**
 * Stowage's EBS snapshots and the volume tag that says which snapshot holds a volume's current data
 * (`stowage:snapshot-current`). Every call goes through callAws; nothing here knows about mounts.
 */
export class SnapshotStore {
  /** markCurrent's re-read of the volume. */
  private readonly reads: VolumeReads;

  constructor(private readonly deps: SnapshotStoreDeps) {
    this.reads = new VolumeReads(deps);
  }

  /** Starts a snapshot of a detached volume, tagged with the name, the source and the generation it captures. */
  async create(volume: EbsVolume, reason: SnapshotReason, step: OperationContext, extraTags: Tag[] = []): Promise<StoredSnapshot> {
    const tags = [...snapshotTags(this.deps.cluster, volume, reason), ...extraTags];
    const out = await this.aws('CreateSnapshot', step, { volumeId: volume.id }, () =>
      this.deps.ec2.send(
        new CreateSnapshotCommand({
          VolumeId: volume.id,
          Description: `stowage ${reason} snapshot of ${volume.name} generation ${volume.generation}`,
          TagSpecifications: [{ ResourceType: 'snapshot', Tags: tags }],
        }),
      ),
    );
    const snapshot = toStoredSnapshot({ ...out, Tags: out.Tags ?? tags });
    step.log.info({ volumeId: volume.id, snapshotId: snapshot.id, reason, generation: volume.generation }, 'snapshot started');
    return snapshot;
  }

  /**
   * A snapshot that outlives its volume (a scheduled backup, an operator snapshot): it also records
   * how to make the volume again, options and EBS type included, for a restore once the volume is gone.
   */
  createKeeping(volume: EbsVolume, reason: 'backup' | 'operator', step: OperationContext, extraTags: Tag[] = []): Promise<StoredSnapshot> {
    return this.create(volume, reason, step, [...restorableTags(this.deps.cluster, volume), ...extraTags]);
  }

  /** undefined when it does not exist (any more). */
  async find(snapshotId: string, step: OperationContext): Promise<StoredSnapshot | undefined> {
    try {
      const out = await this.aws('DescribeSnapshots', step, { snapshotId }, () =>
        // Only this account's: an id from a tag or an option must not restore someone else's data.
        this.deps.ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId], OwnerIds: ['self'] })),
      );
      const found = out.Snapshots?.[0];
      return found ? toStoredSnapshot(found) : undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** The snapshots the plugin took of one volume name to move it (not operator backups), newest first. */
  async movingAids(name: string, step: OperationContext): Promise<StoredSnapshot[]> {
    return (await this.ofName(name, step)).filter(isMovingAid);
  }

  /** Every Stowage snapshot of one volume name, newest first (one tag-filtered, paginated call). */
  async ofName(name: string, step: OperationContext): Promise<StoredSnapshot[]> {
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
      (page) => page.Snapshots?.map(toStoredSnapshot),
    );
    return found.sort((a, b) => b.startedAt - a.startedAt || b.id.localeCompare(a.id));
  }

  /**
   * Polls until `completed`, reporting progress; a snapshot in `error` (or gone) is a CloudError. A
   * Describe may not show a snapshot just taken (EC2 is eventually consistent): it is gone only once
   * it stayed unseen for MISSING_MS.
   */
  async waitCompleted(snapshotId: string, step: OperationContext, onProgress: (percent: number) => void): Promise<StoredSnapshot> {
    let missingSince: number | undefined;
    let firstSeen: { at: number; percent: number } | undefined;
    for (let wait = this.deps.pollInitialMs; ; wait = Math.min(wait * 1.6, MAX_POLL_MS)) {
      const now = await this.find(snapshotId, step);
      if (!now) {
        missingSince ??= Date.now();
        if (Date.now() - missingSince >= MISSING_MS || Date.now() >= step.deadline) {
          throw new CloudError(`snapshot ${snapshotId} disappeared before it completed`, 'InvalidSnapshot.NotFound', { snapshotId });
        }
        await delay(Math.min(wait, MISSING_POLL_MS, step.deadline - Date.now()));
        continue;
      }
      missingSince = undefined;
      if (now.state === 'completed') return now;
      if (now.state === 'error') throw new CloudError(`EBS snapshot ${snapshotId} failed (state error)`, 'SnapshotFailed', { snapshotId });
      onProgress(now.percent);
      const at = Date.now();
      if (at >= step.deadline) {
        throw new PendingError(`snapshot ${snapshotId} is still pending (${now.percent}%); it goes on`, { snapshotId });
      }
      // Its progress, as seen on this node's clock, tells when it should end: look then rather than
      // a backoff later (a move waits on this snapshot).
      firstSeen ??= { at, percent: now.percent };
      const rate = now.percent > firstSeen.percent ? (now.percent - firstSeen.percent) / (at - firstSeen.at) : 0;
      const due = rate > 0 ? Math.max(this.deps.pollInitialMs, (100 - now.percent) / rate) : Infinity;
      await delay(Math.min(wait, due, step.deadline - at));
    }
  }

  async delete(snapshotId: string, step: OperationContext): Promise<void> {
    await this.aws('DeleteSnapshot', step, { snapshotId }, () => this.deps.ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }))).catch(
      (err: unknown) => {
        if (!isNotFound(err)) throw err;
      },
    );
    step.log.info({ snapshotId }, 'snapshot deleted');
  }

  /**
   * Records that `snapshotId` holds the volume's current data, then reads the volume again: if it got
   * attached meanwhile, the record is taken back. A read that misses the attach (EC2 is eventually
   * consistent) leaves a record that names a snapshot not covering the latest attachment; the mover
   * checks that (coversAttach) before trusting it. Returns the snapshot recorded, or undefined.
   */
  async markCurrent(volume: EbsVolume, snapshotId: string, step: OperationContext): Promise<string | undefined> {
    const context = { volumeId: volume.id, snapshotId };
    await this.aws('CreateTags', step, context, () =>
      this.deps.ec2.send(new CreateTagsCommand({ Resources: [volume.id], Tags: [{ Key: Tags.snapshotCurrent, Value: snapshotId }] })),
    );
    const now = await this.reads.volume(volume.id, step);
    if (now?.attachment) {
      step.log.warn({ ...context, instance: now.attachment.instanceId }, 'volume was attached while its snapshot started; the snapshot is not its current data');
      await this.forget(volume.id, step);
      return undefined;
    }
    return snapshotId;
  }

  /** Before an attach: no snapshot holds the data any more, and the volume is no longer blank. */
  async forget(volumeId: string, step: OperationContext): Promise<void> {
    await this.aws('DeleteTags', step, { volumeId }, () =>
      this.deps.ec2.send(new DeleteTagsCommand({ Resources: [volumeId], Tags: [{ Key: Tags.snapshotCurrent }, { Key: Tags.blank }] })),
    );
  }

  /** Retention (snapshot/retention.ts) for one name: deletes what the policy names. */
  async prune(name: string, keep: number, protect: ReadonlySet<string>, step: OperationContext): Promise<number> {
    const all = await this.movingAids(name, step);
    const doomed = snapshotsToPrune(all, keep, protect);
    for (const s of doomed) await this.delete(s.id, step);
    if (doomed.length > 0) step.log.info({ deleted: doomed.map((s) => s.id), kept: all.length - doomed.length, keep }, 'old snapshots deleted (retention)');
    return doomed.length;
  }

  /** Scheduled backups (snapshot/retention.ts backupsToPrune) for one name: deletes what the policy names. */
  async pruneBackups(name: string, keep: number, protect: ReadonlySet<string>, step: OperationContext): Promise<number> {
    const all = await this.ofName(name, step);
    const doomed = backupsToPrune(all, keep, protect);
    for (const s of doomed) await this.delete(s.id, step);
    if (doomed.length > 0) step.log.info({ deleted: doomed.map((s) => s.id), keep }, 'old backups deleted (backupretain)');
    return doomed.length;
  }

  private aws<T>(operation: string, step: OperationContext, context: ErrorContext, send: () => Promise<T>): Promise<T> {
    return callInStep(this.deps.counter, operation, step, context, send, this.deps.retry);
  }
}
