import { CreateVolumeCommand, DeleteVolumeCommand, type Tag, type VolumeType } from '@aws-sdk/client-ec2';
import { callInStep } from '../aws/call.js';
import { Ec2Code, hasCode, isNotFound } from '../aws/errors.js';
import type { OperationContext } from '../core/context.js';
import { CloudError, VolumeBusyError, type ErrorContext } from '../core/errors.js';
import { copyToken } from '../core/schema/client-token.js';
import { toEbsVolume, volumeTagSpecification, volumeTags, type EbsVolume, type TaggedOptions } from '../core/schema/ebs-volume.js';
import type { StoredSnapshot } from '../core/schema/snapshot-record.js';
import { Tags } from '../core/schema/tags.js';
import { EBS_LIMITS, EBS_TYPES, type EbsType } from '../core/volume-options.js';
import type { VolumeWorkDeps } from './volume-work.js';

/** Boundaries of a replacing restore, in order; a test's crash hook stops it at one of them. */
export type RestoreStep = 'kept' | 'created' | 'retired';

/** What the new volume is made like: EC2's side (type, IOPS, encryption) and the tagged options. */
export interface VolumeTemplate {
  size: number | undefined;
  type: string;
  iops: number | undefined;
  throughput: number | undefined;
  encrypted: boolean;
  kmskeyid: string | undefined;
  options: TaggedOptions;
  initRate: number | undefined;
}

export interface VolumeRestoreDeps extends VolumeWorkDeps {
  /** Progress of the long waits (the snapshot that keeps a replaced volume), for a CLI's progress line. */
  onProgress?: (label: string, percent: number) => void;
  /** Tests: runs after each step; a throw there is a crash, after which a rerun must resume. */
  afterStep?: (step: RestoreStep) => Promise<void> | void;
}

export interface Replaced {
  volume: EbsVolume;
  /** The snapshot that keeps the replaced volume's data (reason operator: only a person deletes it). */
  kept: string;
}

/** Rounds of a replacement token that answers a deleted volume (a Mount met the replacement and discarded it). */
const MAX_ROUNDS = 5;

/**
 * Makes a relocatable volume from a snapshot: under a new name, or in place of a detached volume.
 * Every step of a replacement is on record in tags, so a rerun after a crash resumes it:
 *
 * - the replaced volume's data is first kept in a snapshot tagged `stowage:replaced-by`;
 * - the replacement is made with generation + 1 and `stowage:moved-from` = the replaced volume, so
 *   until that is deleted it is an unfinished copy that no one mounts (as a move's);
 * - deleting the replaced volume commits. EC2 refuses that while it is attached: a Mount that won
 *   the race keeps its volume, and the replacement is deleted.
 */
export class VolumeRestorer {
  constructor(private readonly deps: VolumeRestoreDeps) {}

  /** A new volume `name` (generation 1) in `zone` from `snapshot`, available on return. */
  async asNew(name: string, snapshot: StoredSnapshot, template: VolumeTemplate, zone: string, step: OperationContext): Promise<EbsVolume> {
    const tags = volumeTags(this.deps.cluster, name, 1, template.options);
    return this.create(name, snapshot.id, template, zone, 1, tags, 'new', step);
  }

  /** `current` (detached) replaced by a volume made from `snapshot`; resumes a replacement a crash left midway. */
  async replace(current: EbsVolume, snapshot: StoredSnapshot, template: VolumeTemplate, zone: string, step: OperationContext): Promise<Replaced> {
    const source = current.movingTo ? current : await this.deps.reads.fresh(current.id, step);
    if (!source) throw new CloudError(`volume ${current.id} of ${current.name} disappeared during the restore; run it again`, 'InvalidVolume.NotFound', { volumeId: current.id });
    this.refuseIfAttached(source);
    const kept = await this.keep(source, snapshot, step);
    await this.deps.afterStep?.('kept');
    const replacement =
      source.movingTo && source.movingTo.restoredFrom === snapshot.id
        ? source.movingTo
        : await this.create(source.name, snapshot.id, template, zone, source.generation + 1, [
            ...volumeTags(this.deps.cluster, source.name, source.generation + 1, template.options),
            { Key: Tags.movedFrom, Value: source.id },
          ], source.id, step);
    await this.deps.afterStep?.('created');
    const ready = await this.available(replacement, step);
    await this.retire(source, ready, kept, step);
    await this.deps.afterStep?.('retired');
    step.log.info({ volumeId: ready.id, replaced: source.id, kept: kept.id, snapshotId: snapshot.id }, 'volume replaced by its restore; the old data is kept in a snapshot');
    return { volume: ready, kept: kept.id };
  }

  /** The snapshot holding the replaced volume's data: the one an earlier run of this restore took, or a new one. */
  private async keep(source: EbsVolume, snapshot: StoredSnapshot, step: OperationContext): Promise<StoredSnapshot> {
    const earlier = (await this.deps.snapshots.ofName(source.name, step)).find(
      (s) => s.replacedBy === snapshot.id && s.source === source.id && s.coversAttach === source.lastAttach && s.state !== 'error',
    );
    const kept = earlier ?? (await this.deps.snapshots.createKeeping(source, 'operator', step, [{ Key: Tags.replacedBy, Value: snapshot.id }]));
    if (!earlier) step.log.info({ volumeId: source.id, snapshotId: kept.id }, 'keeping the volume to be replaced in a snapshot');
    return this.deps.snapshots.waitCompleted(kept.id, step, (percent) => this.deps.onProgress?.(`keeping ${source.id} in ${kept.id}`, percent));
  }

  private async create(name: string, snapshotId: string, t: VolumeTemplate, zone: string, generation: number, tags: Tag[], source: string, step: OperationContext): Promise<EbsVolume> {
    const type = (EBS_TYPES as readonly string[]).includes(t.type) ? (t.type as EbsType) : undefined;
    const limits = type ? EBS_LIMITS[type] : undefined;
    const context: ErrorContext = { volume: name, snapshotId, zone, generation };
    for (let round = 0, salt = 'restore'; ; round++) {
      const out = await this.aws('CreateVolume', step, context, () =>
        this.deps.ec2.send(
          new CreateVolumeCommand({
            AvailabilityZone: zone,
            SnapshotId: snapshotId,
            ...(t.size !== undefined && { Size: t.size }),
            VolumeType: t.type as VolumeType,
            ...(limits?.iops && t.iops !== undefined && { Iops: t.iops }),
            ...(limits?.throughput && t.throughput !== undefined && { Throughput: t.throughput }),
            Encrypted: t.encrypted,
            ...(t.kmskeyid !== undefined && { KmsKeyId: t.kmskeyid }),
            // EBS loads a restored volume's blocks lazily; a provisioned rate makes it fast sooner.
            ...(t.initRate !== undefined && { VolumeInitializationRate: t.initRate }),
            TagSpecifications: volumeTagSpecification(tags),
            // The same on a rerun: a crash after CreateVolume gets the same volume back.
            ClientToken: copyToken(this.deps.cluster, name, generation, source, snapshotId, salt),
          }),
        ),
      );
      if (out.State !== 'deleting' && out.State !== 'deleted') {
        step.log.info({ ...context, volumeId: out.VolumeId }, 'volume created from the snapshot');
        const seen = await this.deps.waiter.waitFor(out.VolumeId!, (v) => v !== undefined, { deadline: step.deadline, what: `${out.VolumeId} to be visible`, log: step.log });
        return toEbsVolume(seen!, this.deps.cluster)!;
      }
      if (round >= MAX_ROUNDS) throw new CloudError(`every volume made for this restore of ${name} was deleted meanwhile`, 'RestoreDiscarded', context);
      salt = out.VolumeId!;
    }
  }

  private async available(volume: EbsVolume, step: OperationContext): Promise<EbsVolume> {
    const seen = await this.deps.waiter.waitFor(volume.id, (v) => v?.State !== 'creating', { deadline: step.deadline, what: `${volume.id} to become available`, log: step.log });
    const now = seen && toEbsVolume(seen, this.deps.cluster);
    if (!now || now.state !== 'available') {
      throw new CloudError(`the volume ${volume.id} made for the restore of ${volume.name} is ${now?.state ?? 'gone'}; run the restore again`, 'RestoreFailed', { volumeId: volume.id });
    }
    return now;
  }

  /** Commits: deletes the replaced volume, unless it was attached or written since its data was kept. */
  private async retire(source: EbsVolume, replacement: EbsVolume, kept: StoredSnapshot, step: OperationContext): Promise<void> {
    const now = await this.deps.reads.fresh(source.id, step);
    if (!now) return; // an earlier run committed already
    const problem = now.attachment ? `it was attached to ${now.attachment.instanceId}` : now.lastAttach !== kept.coversAttach ? 'it was mounted and written since its data was kept' : undefined;
    try {
      if (problem) throw new VolumeBusyError(`volume ${source.name} was not replaced: ${problem}; the restore gave up and kept it`, { volumeId: source.id });
      await this.aws('DeleteVolume', step, { volumeId: source.id }, () => this.deps.ec2.send(new DeleteVolumeCommand({ VolumeId: source.id })));
    } catch (err) {
      if (isNotFound(err)) return;
      const busy = err instanceof VolumeBusyError || hasCode(err, Ec2Code.VolumeInUse, Ec2Code.IncorrectState);
      if (!busy) throw err;
      await this.aws('DeleteVolume', step, { volumeId: replacement.id }, () => this.deps.ec2.send(new DeleteVolumeCommand({ VolumeId: replacement.id }))).catch((e: unknown) => {
        if (!isNotFound(e)) throw e;
      });
      throw err instanceof VolumeBusyError ? err : new VolumeBusyError(`volume ${source.name} was attached during the restore; the restore gave up and kept it`, { volumeId: source.id });
    }
  }

  private refuseIfAttached(volume: EbsVolume): void {
    if (!volume.attachment) return;
    throw new VolumeBusyError(`volume ${volume.name} is attached to ${volume.attachment.instanceId}; only a detached volume is replaced (stop its service, or restore with --as NEWNAME)`, {
      volumeId: volume.id,
      instance: volume.attachment.instanceId,
    });
  }

  private aws<T>(operation: string, step: OperationContext, context: ErrorContext, send: () => Promise<T>): Promise<T> {
    return callInStep(this.deps.counter, operation, step, context, send, this.deps.retry);
  }
}
