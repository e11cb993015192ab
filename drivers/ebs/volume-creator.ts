import { CreateVolumeCommand, DeleteVolumeCommand, type Volume, type VolumeType } from '@aws-sdk/client-ec2';
import { isNotFound } from '../../aws/errors.js';
import { WaitTimeoutError } from '../../aws/volume-waiter.js';
import type { OperationContext } from '../../core/context.js';
import { delay } from '../../core/delay.js';
import { CloudError, PendingError, VolumeConflictError } from '../../core/errors.js';
import { createToken } from '../../core/schema/client-token.js';
import { currentOf, optionDifferences, optionsOf, pickCurrent, volumeTagSpecification, volumeTags, type EbsVolume } from '../../core/schema/ebs-volume.js';
import { Tags } from '../../core/schema/tags.js';
import { EBS_LIMITS, type VolumeOptions } from '../../core/volume-options.js';
import type { EbsCalls } from './ebs-calls.js';
import type { VolumeCatalog } from './volume-catalog.js';

export interface CreatorDeps {
  calls: EbsCalls;
  catalog: VolumeCatalog;
  cluster: string;
  /** New volumes are made in this node's zone. */
  zone: string;
}

/** How long a volume whose Create answered an error before its race was settled is settled by a repeated Create. */
const UNSETTLED_MS = 60_000;

/** Create: idempotent (look up by tag, then a token per Create), and a repeated Create is judged on its options. */
export class VolumeCreator {
  /** Volumes this node made whose Create ended before settleRace did (Pending): a repeated Create settles them. */
  private readonly unsettled = new Map<string, { id: string; at: number }>();

  constructor(private readonly deps: CreatorDeps) {}

  async create(name: string, options: VolumeOptions, ctx: OperationContext): Promise<void> {
    const { calls, catalog, cluster, zone } = this.deps;
    // EC2's answer by name, not catalog.lookup: its memory of the volume this node made last may name
    // one another node removed since, and waits for it to the deadline. A lagging Describe that
    // misses a volume here makes a second one, which settleRace deletes.
    const all = await catalog.named(name, ctx.deadline, ctx.log);
    const existing = currentOf(all);
    const mine = this.unsettled.get(name);
    if (mine && Date.now() - mine.at > UNSETTLED_MS) this.unsettled.delete(name);
    else if (mine && all.some((v) => v.id === mine.id && v.state !== 'deleting' && v.state !== 'deleted')) {
      await this.settleRace(name, mine.id, options, ctx);
      this.unsettled.delete(name);
      return;
    }
    if (existing) return this.confirmExisting(existing, options, ctx);
    const limits = EBS_LIMITS[options.ebstype];
    // Blank until its first attach: a cross-zone move of it then needs no snapshot.
    const tags = [...volumeTags(cluster, name, 1, options), ...(options.snapshot === undefined ? [{ Key: Tags.blank, Value: 'true' }] : [])];
    const token = createToken();
    try {
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
            // Only with a snapshot: EC2 refuses an initialization rate for a blank volume.
            ...(options.snapshot !== undefined && options.initrate !== undefined && { VolumeInitializationRate: options.initrate }),
            TagSpecifications: volumeTagSpecification(tags),
            ClientToken: token,
          }),
        ),
      );
      const volumeId = created.VolumeId!;
      ctx.log.info({ volumeId, zone }, 'EBS volume created');
      catalog.madeHere(name, volumeId);
      this.unsettled.set(name, { id: volumeId, at: Date.now() });
      await this.waitCreated(name, volumeId, ctx);
      await this.settleRace(name, volumeId, options, ctx);
      this.unsettled.delete(name);
    } finally {
      catalog.invalidate();
    }
  }

  /**
   * Two nodes that both missed the name (dockerd's Get before Create runs on every node preparing
   * the task) each make a volume. Every Create looks again once its own is available: the oldest
   * volume of the name wins, and a loser deletes its own, which nothing has attached yet. The
   * decision waits for a Describe that shows our own volume: a lagging one that does not may miss
   * the other node's too, made before ours, and both nodes would keep theirs.
   */
  private async settleRace(name: string, volumeId: string, options: VolumeOptions, ctx: OperationContext): Promise<void> {
    const { calls, catalog, zone } = this.deps;
    let all = await catalog.named(name, ctx.deadline, ctx.log);
    for (let wait = 50; !all.some((v) => v.id === volumeId); wait = Math.min(wait * 2, 1000)) {
      if (Date.now() + wait >= ctx.deadline) {
        throw new PendingError(`volume ${name} (${volumeId}) was created, but EC2 does not list it yet to check that no other node created ${name} at the same time; Create again to check`, { volumeId, zone });
      }
      await delay(wait);
      all = await catalog.named(name, ctx.deadline, ctx.log);
    }
    const winner = pickCurrent(all);
    if (!winner || winner.id === volumeId) return;
    ctx.log.warn({ volumeId, winner: winner.id, zone: winner.zone }, 'another node created this name at the same time; deleting our volume, the older one stays');
    await calls.aws('DeleteVolume', ctx, { volumeId }, () => calls.ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId }))).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
    await this.confirmExisting(winner, options, ctx);
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

  /**
   * Until `available`. A volume EC2 does not show yet is still being created: a Describe may lag
   * the CreateVolume that answered (EC2 is eventually consistent).
   */
  private async waitCreated(name: string, volumeId: string, ctx: OperationContext): Promise<void> {
    const { calls, zone } = this.deps;
    let volume: Volume | undefined;
    try {
      volume = await calls.waiter.waitFor(volumeId, (v) => v !== undefined && v.State !== 'creating', {
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
    if (volume?.State === 'error') {
      await calls.aws('DeleteVolume', ctx, { volumeId }, () => calls.ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId })));
      throw new CloudError(`EC2 failed to create volume ${name} (${volumeId} ended in state error; deleted it)`, 'VolumeCreationFailed', { volumeId, zone });
    }
    if (volume?.State === 'deleting' || volume?.State === 'deleted') {
      throw new CloudError(`volume ${name} (${volumeId}) was deleted while it was being created`, 'VolumeDeleted', { volumeId, zone });
    }
  }
}
