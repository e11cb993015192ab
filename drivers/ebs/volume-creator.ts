import { CreateVolumeCommand, DeleteVolumeCommand, type Volume, type VolumeType } from '@aws-sdk/client-ec2';
import { Ec2Code, hasCode } from '../../aws/errors.js';
import { WaitTimeoutError } from '../../aws/volume-waiter.js';
import type { OperationContext } from '../../core/context.js';
import { CloudError, PendingError, VolumeConflictError } from '../../core/errors.js';
import { clientToken } from '../../core/schema/client-token.js';
import { optionDifferences, optionsOf, volumeTagSpecification, volumeTags, type EbsVolume } from '../../core/schema/ebs-volume.js';
import { Tags } from '../../core/schema/tags.js';
import { EBS_LIMITS, type VolumeOptions } from '../../core/volume-options.js';
import type { EbsCalls } from './ebs-calls.js';
import type { VolumeCatalog } from './volume-catalog.js';

/** Client tokens tried in turn when EC2 answers an old token with the deleted volume it made. */
const MAX_TOKEN_REUSE = 5;

export interface CreatorDeps {
  calls: EbsCalls;
  catalog: VolumeCatalog;
  cluster: string;
  /** New volumes are made in this node's zone. */
  zone: string;
}

/** Create: idempotent (look up by tag, then a ClientToken), and a repeated Create is judged on its options. */
export class VolumeCreator {
  constructor(private readonly deps: CreatorDeps) {}

  async create(name: string, options: VolumeOptions, ctx: OperationContext): Promise<void> {
    const { calls, catalog, cluster, zone } = this.deps;
    const existing = await catalog.lookup(name, ctx.deadline, ctx.log);
    if (existing) return this.confirmExisting(existing, options, ctx);
    const limits = EBS_LIMITS[options.ebstype];
    // Blank until its first attach: a cross-zone move of it then needs no snapshot.
    const tags = [...volumeTags(cluster, name, 1, options), ...(options.snapshot === undefined ? [{ Key: Tags.blank, Value: 'true' }] : [])];
    try {
      for (let reuse = 0; reuse < MAX_TOKEN_REUSE; reuse++) {
        const created = await calls.aws('CreateVolume', ctx, { zone }, () =>
          calls.ec2.send(
            new CreateVolumeCommand({
              AvailabilityZone: zone,
              Size: options.size,
              VolumeType: options.ebstype as VolumeType,
              ...(limits.iops && options.iops !== undefined && { Iops: options.iops }),
              ...(limits.throughput && options.throughput !== undefined && { Throughput: options.throughput }),
              Encrypted: options.encrypted,
              ...(options.kmskeyid !== undefined && { KmsKeyId: options.kmskeyid }),
              ...(options.snapshot !== undefined && { SnapshotId: options.snapshot }),
              TagSpecifications: volumeTagSpecification(tags),
              ClientToken: clientToken(cluster, name, 1, reuse),
            }),
          ),
        );
        const volumeId = created.VolumeId!;
        ctx.log.info({ volumeId, zone, reuse }, 'EBS volume created');
        const ready = await this.waitCreated(name, volumeId, ctx);
        if (ready) return;
        ctx.log.info({ volumeId }, 'client token belonged to a deleted volume of this name; trying the next one');
      }
      throw new CloudError(`CreateVolume kept returning deleted volumes for ${name}`, 'IdempotentParameterMismatch', { zone });
    } catch (err) {
      // Another node won the race with other parameters (or in another zone): judge its volume.
      if (!hasCode(err, Ec2Code.IdempotentParameterMismatch)) throw err;
      const winner = await catalog.lookup(name, ctx.deadline, ctx.log);
      if (!winner) throw err;
      return this.confirmExisting(winner, options, ctx);
    } finally {
      catalog.invalidate();
    }
  }

  /** Same options: nothing to do (but wait for `available`). Other options: a conflict naming them. */
  private async confirmExisting(existing: EbsVolume, options: VolumeOptions, ctx: OperationContext): Promise<void> {
    const differences = optionDifferences(options, optionsOf(existing));
    if (differences.length > 0) {
      throw new VolumeConflictError(
        `volume ${existing.name} already exists with other options: ${differences.join(', ')}`,
        { volumeId: existing.id, zone: existing.zone },
      );
    }
    ctx.log.debug({ volumeId: existing.id, zone: existing.zone }, 'volume exists with the same options');
    if (existing.state === 'creating') await this.waitCreated(existing.name, existing.id, ctx);
  }

  /** true once `available`; false when the volume is gone (an old client token's deleted volume). */
  private async waitCreated(name: string, volumeId: string, ctx: OperationContext): Promise<boolean> {
    const { calls, zone } = this.deps;
    let volume: Volume | undefined;
    try {
      volume = await calls.waiter.waitFor(volumeId, (v) => v?.State !== 'creating', {
        deadline: ctx.deadline,
        what: `${volumeId} to become available`,
        log: ctx.log,
      });
    } catch (err) {
      if (err instanceof WaitTimeoutError) {
        throw new PendingError(`volume ${name} (${volumeId}) is still being created by EC2; Create again to check`, { volumeId, zone });
      }
      throw err;
    }
    if (volume === undefined || volume.State === 'deleting' || volume.State === 'deleted') return false;
    if (volume.State === 'error') {
      await calls.aws('DeleteVolume', ctx, { volumeId }, () => calls.ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId })));
      throw new CloudError(`EC2 failed to create volume ${name} (${volumeId} ended in state error; deleted it)`, 'VolumeCreationFailed', { volumeId, zone });
    }
    return true;
  }
}
