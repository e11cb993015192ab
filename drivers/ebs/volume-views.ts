import type { VolumeInfo } from '../driver.js';
import { describeInitialization, describeModification } from '../../aws/volume-progress.js';
import type { OperationContext } from '../../core/context.js';
import { optionsOf, type EbsVolume } from '../../core/schema/ebs-volume.js';
import type { MoveProgress } from '../../snapshot/zone-move.js';
import type { ProgressCache, VolumeProgress } from './progress-cache.js';

/**
 * What Get and List show of a relocatable volume. The same VolumeInfo for as long as its catalog
 * record and mount state last, so List's reply is serialized once per change, not per request. A
 * volume this node is moving shows live progress and is never cached.
 */
export class VolumeViews {
  private readonly infos = new WeakMap<EbsVolume, VolumeInfo>();

  constructor(
    private readonly mountpointOf: (name: string) => string,
    /** The move a Mount in flight on this node is making of a volume. */
    private readonly moveOf: (name: string) => MoveProgress | undefined,
    private readonly progress: ProgressCache,
  ) {}

  /** What Get shows: `info`, and what EC2 is doing to the volume (a modification, its initialization). */
  async detailed(volume: EbsVolume, mountedHere: boolean, ctx: OperationContext): Promise<VolumeInfo> {
    const progress = await this.progress.of(volume, ctx);
    if (!progress.modification && !progress.initialization) return this.info(volume, mountedHere);
    return this.describe(volume, mountedHere, this.moveOf(volume.name), progress);
  }

  info(volume: EbsVolume, mountedHere: boolean): VolumeInfo {
    const move = this.moveOf(volume.name);
    if (move) return this.describe(volume, mountedHere, move);
    const cached = this.infos.get(volume);
    if (cached && (cached.mountpoint !== undefined) === mountedHere) return cached;
    const info = this.describe(volume, mountedHere, undefined);
    this.infos.set(volume, info);
    return info;
  }

  private describe(volume: EbsVolume, mountedHere: boolean, move: MoveProgress | undefined, progress?: VolumeProgress): VolumeInfo {
    const status: VolumeInfo['status'] = {
      backing: 'relocatable',
      volumeId: volume.id,
      zone: volume.zone,
      size: volume.size,
      type: volume.type,
      state: volume.state,
      generation: volume.generation,
      fs: volume.fs,
      encrypted: volume.encrypted,
    };
    if (volume.tagProblems.length > 0) status.tagProblems = volume.tagProblems.join('; ');
    if (volume.iops !== undefined) status.iops = volume.iops;
    if (volume.throughput !== undefined) status.throughput = volume.throughput;
    // As the node holding it last measured; a volume not mounted since it was made shows none.
    if (volume.filesystemMiB !== undefined) status.filesystemSize = `${volume.filesystemMiB} MiB`;
    if (progress?.modification) {
      status.modification = describeModification(progress.modification);
      if (progress.modification.nextAllowedAt) status.nextModification = `not before ${progress.modification.nextAllowedAt.toISOString()}${progress.modification.state === 'completed' ? '' : ', once this one completes'}`;
    }
    if (progress?.initialization) status.initialization = describeInitialization(progress.initialization);
    if (volume.attachment) {
      status.attachedTo = volume.attachment.instanceId;
      status.attachment = volume.attachment.state;
    }
    // This node's own move knows its stage and progress; another node's shows as its unfinished copy.
    if (move) {
      status.moving = `${move.from} → ${move.to}`;
      status.moveStage = `${move.stage}${move.percent !== undefined ? ` ${move.percent}%` : ''}`;
    } else if (volume.movingTo) {
      status.moving = `${volume.zone} → ${volume.movingTo.zone}`;
      status.moveStage = volume.movingTo.state === 'creating' ? 'creating' : 'retiring';
    }
    if (volume.movingTo) status.moveCopy = volume.movingTo.id;
    return {
      name: volume.name,
      backing: 'relocatable',
      ...(mountedHere && { mountpoint: this.mountpointOf(volume.name) }),
      ...(volume.createdAt && { createdAt: volume.createdAt.toISOString() }),
      status,
      options: optionsOf(volume),
    };
  }
}
