import { CreateVolumeCommand, DeleteVolumeCommand, type Tag, type VolumeType } from '@aws-sdk/client-ec2';
import { callInStep } from '../aws/call.js';
import type { WorkMetrics } from '../core/metrics.js';
import { Ec2Code, hasCode, isNotFound } from '../aws/errors.js';
import { WaitTimeoutError } from '../aws/volume-waiter.js';
import { Tags } from '../core/schema/tags.js';
import { copyToken } from '../core/schema/client-token.js';
import { currentOf, neverWritten, taggedOptionsOf, toEbsVolume, volumeTagSpecification, volumeTags, type EbsVolume } from '../core/schema/ebs-volume.js';
import { CloudError, PendingError, VolumeBusyError, VolumeNotFoundError, type ErrorContext } from '../core/errors.js';
import { EBS_LIMITS, EBS_TYPES, type EbsType } from '../core/volume-options.js';
import type { VolumeWorkDeps } from './volume-work.js';
import type { OperationContext } from '../core/context.js';
import type { Logger } from '../core/log.js';
import { delay } from '../core/delay.js';

export type MoveStage = 'snapshot' | 'creating' | 'verifying' | 'retiring';

/** Where a move stands, for the answer a Mount gets at its deadline and for Get's Status. */
export interface MoveProgress {
  name: string;
  from: string;
  to: string;
  stage: MoveStage;
  /** The snapshot's progress, while stage is `snapshot`. */
  percent?: number;
}

/** `volume db1 is moving us-east-1a → us-east-1b: snapshot 57%` */
export function describeMove(p: MoveProgress): string {
  return `volume ${p.name} is moving ${p.from} → ${p.to}: ${p.stage}${p.percent !== undefined ? ` ${p.percent}%` : ''}`;
}

/** OperationContext boundaries, in order; a test's crash hook stops a mover at one of them. */
export type MoveStep = 'snapshot-started' | 'snapshot-completed' | 'copy-created' | 'copy-available' | 'source-retired';

export interface ZoneMoverDeps extends VolumeWorkDeps {
  /** Every volume carrying the name now, from EC2. */
  named: (name: string, deadline: number, log: Logger) => Promise<EbsVolume[]>;
  /** STOWAGE_SNAPSHOT_RETAIN: snapshots kept per volume after a move. */
  retain: number;
  /** Stage durations for Prometheus; noMetrics when metrics are off. */
  metrics?: WorkMetrics;
  /** Tests: runs after each step; a promise that never settles abandons the mover there, as kill -9 would. */
  afterStep?: (step: MoveStep, name: string) => Promise<void> | void;
}

/** Backoff between attempts to retire the source (each after a fresh check of the source). */
const RETIRE_BACKOFF_MS = 200;
const MAX_RETIRE_BACKOFF_MS = 5000;
/** Rounds of "read the tags, do the next step" before a move is given up as contended. */
const MAX_ROUNDS = 8;

/**
 * Moves a relocatable volume to another availability zone (DESIGN.md invariant 5). The state lives
 * in tags only, so any node can resume a move from any step:
 *
 * - the source carries `stowage:snapshot-current` once a snapshot holds its data (taken now, or at
 *   its last clean unmount; every attach removes the tag);
 * - the copy is created from that snapshot with generation + 1, a deterministic client token and
 *   `stowage:moved-from` = the source; while the source exists the copy is unfinished, and no one
 *   mounts it;
 * - deleting the source commits the move. EC2 refuses that while the source is attached, so a move
 *   cannot lose writes made meanwhile: it finds out, removes its copy and starts over.
 *
 * A volume never written (`stowage:blank` without `stowage:formatted`) is re-created in the target
 * zone without a snapshot.
 */
export class ZoneMover {
  constructor(private readonly deps: ZoneMoverDeps) {}

  private stageDone(step: OperationContext, stage: string, startedAt: number, fields: Record<string, unknown>): void {
    const ms = Date.now() - startedAt;
    step.log.info({ ...fields, stage, ms }, 'move stage done');
    this.deps.metrics?.moveStage(stage, ms / 1000, 'ok');
  }

  /** Returns the volume in `targetZone`, available and not attached. */
  async move(name: string, targetZone: string, step: OperationContext, report: (p: MoveProgress) => void): Promise<EbsVolume> {
    const started = Date.now();
    for (let round = 1; round <= MAX_ROUNDS; round++) {
      const listed = currentOf(await this.deps.named(name, step.deadline, step.log));
      if (!listed) throw new VolumeNotFoundError(name);
      const copy = listed.movingTo;
      // What the copy is made from, and whether the source is held, are decided on a view that
      // holds every change before this move (a lagging Describe may show an attachment long gone).
      const decides = (!copy && listed.zone !== targetZone) || listed.attachment !== undefined;
      const source = decides ? await this.deps.reads.fresh(listed.id, step) : listed;
      if (!source) continue;
      if (!copy && source.zone === targetZone) {
        step.log.info({ volumeId: source.id, zone: targetZone, generation: source.generation, ms: Date.now() - started }, 'cross-zone move done');
        return source;
      }
      if (source.attachment) {
        throw new VolumeBusyError(`volume ${name} was attached to instance ${source.attachment.instanceId} in ${source.zone} during its move; it moves once unmounted there`, {
          volumeId: source.id,
          instance: source.attachment.instanceId,
          zone: source.zone,
        });
      }
      const progress = (stage: MoveStage, percent?: number): void =>
        report({ name, from: source.zone, to: copy?.zone ?? targetZone, stage, ...(percent !== undefined && { percent }) });
      if (copy) {
        // An unfinished move (ours before a crash, or another node's, maybe to another zone): finish it first.
        step.log.info({ volumeId: source.id, copyId: copy.id, copyZone: copy.zone }, 'resuming an unfinished cross-zone move');
        await this.finish(source, copy, step, progress);
        continue;
      }
      const made = neverWritten(source) ? await this.recreate(source, targetZone, step, progress) : await this.copyViaSnapshot(source, targetZone, step, progress);
      if (made) await this.finish(source, made, step, progress);
    }
    throw new PendingError(`volume ${name}: the cross-zone move to ${targetZone} kept meeting other moves; mount again to continue it`, { zone: targetZone });
  }

  /** Snapshot (or reuse the one that holds the data), then create the copy from it. */
  private async copyViaSnapshot(
    source: EbsVolume,
    zone: string,
    step: OperationContext,
    progress: (stage: MoveStage, percent?: number) => void,
  ): Promise<EbsVolume | undefined> {
    const { snapshots } = this.deps;
    const t = Date.now();
    progress('snapshot', 0);
    let snapshotId = source.snapshotCurrent;
    const known = snapshotId ? await snapshots.find(snapshotId, step) : undefined;
    // Issue 15.2: the tag may have outlived the data it names (it landed after the next attach);
    // the snapshot is trusted only if it covers the volume's latest attachment.
    if (known && known.coversAttach !== source.lastAttach) {
      step.log.warn({ volumeId: source.id, snapshotId, covers: known.coversAttach, lastAttach: source.lastAttach }, 'the recorded snapshot does not cover the latest attachment; taking a fresh one');
    }
    if (known && known.state !== 'error' && known.coversAttach === source.lastAttach) {
      step.log.info({ volumeId: source.id, snapshotId, state: known.state }, 'reusing the snapshot that holds the current data: no new snapshot');
    } else {
      const taken = await snapshots.create(source, 'move', step);
      await this.after('snapshot-started', source.name);
      const current = await snapshots.markCurrent(source, taken.id, step);
      if (current !== taken.id) {
        // Attached meanwhile, or another mover's snapshot won the tag: ours is surplus.
        await snapshots.delete(taken.id, step);
        if (current === undefined) return undefined;
        step.log.info({ volumeId: source.id, snapshotId: current }, "another mover's snapshot holds the data; using it");
      }
      snapshotId = current;
    }
    await snapshots.waitCompleted(snapshotId!, step, (percent) => progress('snapshot', percent));
    this.stageDone(step, 'snapshot', t, { volumeId: source.id, snapshotId });
    await this.after('snapshot-completed', source.name);
    progress('creating');
    return this.createCopy(source, zone, [{ Key: Tags.snapshotCurrent, Value: snapshotId! }], snapshotId, step);
  }

  /** Never formatted: nothing to copy, a new blank volume in the target zone will do. */
  private async recreate(source: EbsVolume, zone: string, step: OperationContext, progress: (stage: MoveStage) => void): Promise<EbsVolume | undefined> {
    progress('creating');
    step.log.info({ volumeId: source.id, zone }, 'volume was never attached: re-creating it in the target zone, no snapshot');
    return this.createCopy(source, zone, [{ Key: Tags.blank, Value: 'true' }], undefined, step);
  }

  /**
   * CreateVolume of generation + 1. The token depends on the source and the snapshot (copyToken),
   * so two movers of one source cannot both create a copy: the second gets the first's copy back,
   * or IdempotentParameterMismatch when it moves to another zone, and joins in the next round.
   */
  private async createCopy(source: EbsVolume, zone: string, extra: Tag[], snapshotId: string | undefined, step: OperationContext): Promise<EbsVolume | undefined> {
    const generation = source.generation + 1;
    // The copy holds the data of the source's latest attachment: it carries that mark on.
    const lineage = source.lastAttach !== undefined ? [{ Key: Tags.lastAttach, Value: source.lastAttach }] : [];
    const tags = [...volumeTags(this.deps.cluster, source.name, generation, taggedOptionsOf(source)), { Key: Tags.movedFrom, Value: source.id }, ...lineage, ...extra];
    const context: ErrorContext = { volumeId: source.id, zone, generation, ...(snapshotId && { snapshotId }) };
    let copyId: string | undefined;
    // A copy given up earlier (its token answers the deleted volume) salts the next token: every
    // mover that meets the same deleted copy derives the same next one, so they still converge.
    for (let round = 0, salt: string | undefined; ; round++) {
      const created = await this.sendCreateCopy(source, zone, tags, snapshotId, generation, salt, context, step);
      if (!created) return undefined;
      if (created.State !== 'deleting' && created.State !== 'deleted') {
        copyId = created.VolumeId!;
        break;
      }
      if (round >= MAX_ROUNDS) {
        throw new CloudError(`every copy of ${source.id} made from ${snapshotId ?? 'nothing'} was deleted; the move gives up`, 'CopyDeleted', context);
      }
      salt = created.VolumeId;
    }
    step.log.info({ ...context, copyId }, 'copy created in the target zone');
    await this.after('copy-created', source.name);
    // EC2 may not show a volume it just created yet (eventual consistency): wait until it does.
    const seen = await this.deps.waiter.waitFor(copyId, (v) => v !== undefined, { deadline: step.deadline, what: `${copyId} to be visible`, log: step.log });
    return seen && toEbsVolume(seen, this.deps.cluster);
  }

  /** undefined: another mover created the copy of this source first (its token, other parameters). */
  private async sendCreateCopy(
    source: EbsVolume,
    zone: string,
    tags: Tag[],
    snapshotId: string | undefined,
    generation: number,
    salt: string | undefined,
    context: ErrorContext,
    step: OperationContext,
  ) {
    const type = (EBS_TYPES as readonly string[]).includes(source.type) ? (source.type as EbsType) : undefined;
    const limits = type ? EBS_LIMITS[type] : undefined;
    try {
      return await this.aws('CreateVolume', step, context, () =>
        this.deps.ec2.send(
          new CreateVolumeCommand({
            AvailabilityZone: zone,
            Size: source.size,
            VolumeType: source.type as VolumeType,
            ...(limits?.iops && source.iops !== undefined && { Iops: source.iops }),
            ...(limits?.throughput && source.throughput !== undefined && { Throughput: source.throughput }),
            Encrypted: source.encrypted,
            ...(source.kmskeyid !== undefined && { KmsKeyId: source.kmskeyid }),
            ...(snapshotId !== undefined && { SnapshotId: snapshotId }),
            // Only with a snapshot: EC2 refuses an initialization rate for a blank volume.
            ...(snapshotId !== undefined && source.initRate !== undefined && { VolumeInitializationRate: source.initRate }),
            TagSpecifications: volumeTagSpecification(tags),
            ClientToken: copyToken(this.deps.cluster, source.name, generation, source.id, snapshotId, salt),
          }),
        ),
      );
    } catch (err) {
      if (!hasCode(err, Ec2Code.IdempotentParameterMismatch)) throw err;
      step.log.info({ ...context }, 'another mover created the copy of this source first; joining its move');
      return undefined;
    }
  }

  /** Wait for the copy, check it against the source, then commit by deleting the source. */
  private async finish(source: EbsVolume, copy: EbsVolume, step: OperationContext, progress: (stage: MoveStage) => void): Promise<void> {
    let t = Date.now();
    const context = { volumeId: source.id, copyId: copy.id, zone: copy.zone };
    progress('creating');
    let ready: EbsVolume | undefined;
    try {
      const seen = await this.deps.waiter.waitFor(copy.id, (v) => v?.State !== 'creating', { deadline: step.deadline, what: `${copy.id} to become available`, log: step.log });
      ready = seen && (await this.deps.reads.volume(copy.id, step));
    } catch (err) {
      if (err instanceof WaitTimeoutError) throw new PendingError(`the copy ${copy.id} of volume ${source.name} is still being created in ${copy.zone}`, context);
      throw err;
    }
    if (!ready || ready.state === 'deleting' || ready.state === 'deleted') return; // removed by another mover: read the tags again
    if (ready.state === 'error') {
      await this.discard(ready, 'EC2 failed to create it', step);
      throw new CloudError(`EC2 failed to create the copy of volume ${source.name} in ${copy.zone} (${copy.id} ended in state error; deleted it)`, 'VolumeCreationFailed', context);
    }
    this.stageDone(step, 'creating', t, context);
    await this.after('copy-available', source.name);

    t = Date.now();
    progress('verifying');
    const now = await this.deps.reads.fresh(source.id, step);
    const problem = this.mismatch(now ?? source, ready);
    if (now && problem) {
      // The copy no longer holds the source's data (it was attached since), or is not a faithful copy.
      await this.discard(ready, problem, step);
      return;
    }
    this.stageDone(step, 'verifying', t, context);

    t = Date.now();
    progress('retiring');
    if (now && !(await this.retire(source, ready, step))) return;
    this.stageDone(step, 'retiring', t, { ...context, generation: ready.generation });
    step.log.info({ ...context, generation: ready.generation }, 'source volume deleted: the copy is the volume');
    await this.after('source-retired', source.name);
    const protect = new Set([ready.snapshotCurrent].filter((s): s is string => s !== undefined));
    await this.deps.snapshots.prune(source.name, this.deps.retain, protect, step);
  }

  /**
   * Deletes the source, which commits the move. Throttling can stretch the retries over minutes, and
   * the source may be mounted, written and unmounted meanwhile (issue 15.3): each attempt after the
   * first is preceded by a fresh check, and when the source changed it wins and the copy is given up.
   * false: the source won.
   */
  private async retire(source: EbsVolume, copy: EbsVolume, step: OperationContext): Promise<boolean> {
    const context = { volumeId: source.id, copyId: copy.id, zone: copy.zone };
    for (let attempt = 1, backoff = RETIRE_BACKOFF_MS; ; attempt++, backoff = Math.min(backoff * 2, MAX_RETIRE_BACKOFF_MS)) {
      if (attempt > 1) {
        const now = await this.deps.reads.fresh(source.id, step);
        if (!now) return true;
        const problem = this.mismatch(now, copy);
        if (problem) {
          await this.discard(copy, problem, step);
          return false;
        }
      }
      try {
        // One attempt each: the retries are this loop's, each after a fresh check.
        await this.aws('DeleteVolume', { ...step, deadline: Date.now() }, context, () => this.deps.ec2.send(new DeleteVolumeCommand({ VolumeId: source.id })));
        return true;
      } catch (err) {
        if (hasCode(err, Ec2Code.VolumeInUse, Ec2Code.IncorrectState)) {
          await this.discard(copy, `the source ${source.id} was attached meanwhile`, step);
          return false;
        }
        if (isNotFound(err)) return true;
        if (!(err instanceof CloudError) || !err.retryable || Date.now() + backoff >= step.deadline) throw err;
        step.log.info({ ...context, code: err.code, retryInMs: backoff }, 'DeleteVolume of the source failed; checking the source again before the next attempt');
      }
      await delay(backoff);
    }
  }

  /** Why the copy cannot replace the source (undefined: it can). */
  private mismatch(source: EbsVolume, copy: EbsVolume): string | undefined {
    if (source.attachment) return `the source is attached to ${source.attachment.instanceId}`;
    if (copy.lastAttach !== source.lastAttach) return 'the source was attached after the copy was made, so the copy is stale';
    const sameData = neverWritten(copy) ? neverWritten(source) : copy.snapshotCurrent !== undefined && source.snapshotCurrent === copy.snapshotCurrent;
    if (!sameData) return 'the source was attached after the copy was made, so the copy is stale';
    if (copy.generation !== source.generation + 1) return `generation ${copy.generation}, expected ${source.generation + 1}`;
    if (copy.size < source.size || copy.type !== source.type || copy.encrypted !== source.encrypted) {
      return `size/type/encryption ${copy.size}/${copy.type}/${copy.encrypted} differ from the source's ${source.size}/${source.type}/${source.encrypted}`;
    }
    return undefined;
  }

  /** Deletes a copy that lost (a race, a stale snapshot); its source stays the volume. */
  private async discard(copy: EbsVolume, why: string, step: OperationContext): Promise<void> {
    step.log.warn({ copyId: copy.id, zone: copy.zone, why }, 'removing the copy of an abandoned or lost move');
    await this.aws('DeleteVolume', step, { volumeId: copy.id }, () => this.deps.ec2.send(new DeleteVolumeCommand({ VolumeId: copy.id }))).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
  }

  private async after(step: MoveStep, name: string): Promise<void> {
    await this.deps.afterStep?.(step, name);
  }

  private aws<T>(operation: string, step: OperationContext, context: ErrorContext, send: () => Promise<T>): Promise<T> {
    return callInStep(this.deps.counter, operation, step, context, send, this.deps.retry);
  }
}
