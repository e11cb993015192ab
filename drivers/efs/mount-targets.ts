import { DescribeMountTargetsCommand, type EFSClient, type MountTargetDescription } from '@aws-sdk/client-efs';
import { callAws } from '../../aws/call.js';
import type { CallCounter } from '../../aws/call-counter.js';
import { delay } from '../../core/delay.js';
import { hasCode } from '../../aws/errors.js';
import { CloudError, PendingError } from '../../core/errors.js';
import { EFS_NFS_OPTIONS, type ShareSource } from '../shared/mounter.js';
import type { OperationContext } from '../../core/context.js';

export interface MountTargetsDeps {
  efs: EFSClient;
  counter: CallCounter;
  /** This node's availability zone: EFS is reached through the mount target in the same zone. */
  zone: string;
  /** First poll of a `creating` mount target (default 1 s), then ×1.5. */
  pollInitialMs?: number;
}

/** The IP address of each file system's mount target in this node's zone, asked once and kept. */
export class MountTargets {
  private readonly known = new Map<string, string>();

  constructor(private readonly deps: MountTargetsDeps) {}

  /** `path` of the file system, mounted over NFS through this zone's mount target with AWS's options. */
  async source(fileSystemId: string, path: string, ctx: OperationContext): Promise<ShareSource> {
    return { server: await this.inZone(fileSystemId, ctx), path, options: EFS_NFS_OPTIONS };
  }

  /** This zone's mount target of `fileSystemId`, once `available`; a clear error when there is none. */
  async inZone(fileSystemId: string, ctx: OperationContext): Promise<string> {
    const known = this.known.get(fileSystemId);
    if (known) return known;
    const context = { fileSystemId, zone: this.deps.zone };
    let waitMs = this.deps.pollInitialMs ?? 1000;
    for (;;) {
      const target = this.pick(fileSystemId, await this.describe(fileSystemId, ctx));
      if (target.LifeCycleState === 'available') {
        this.known.set(fileSystemId, target.IpAddress!);
        return target.IpAddress!;
      }
      if (target.LifeCycleState !== 'creating') {
        throw new CloudError(`the mount target of EFS file system ${fileSystemId} in ${this.deps.zone} is ${target.LifeCycleState}; it cannot serve mounts`, 'MountTargetUnavailable', { ...context, mountTarget: target.MountTargetId });
      }
      if (Date.now() + waitMs >= ctx.deadline) {
        throw new PendingError(`the mount target of EFS file system ${fileSystemId} in ${this.deps.zone} is still being created; retry shortly`, { ...context, mountTarget: target.MountTargetId });
      }
      ctx.log.debug({ ...context, mountTarget: target.MountTargetId }, 'mount target still creating; waiting');
      await delay(waitMs);
      waitMs = Math.round(waitMs * 1.5);
    }
  }

  private pick(fileSystemId: string, targets: MountTargetDescription[]): MountTargetDescription {
    const here = targets.find((t) => t.AvailabilityZoneName === this.deps.zone && t.IpAddress);
    if (here) return here;
    const zones = targets.map((t) => t.AvailabilityZoneName).filter(Boolean);
    throw new CloudError(
      `EFS file system ${fileSystemId} has no mount target in this node's zone ${this.deps.zone}` +
        ` (${zones.length > 0 ? `it has mount targets in ${zones.join(', ')}` : 'it has no mount targets at all'}); create one in a subnet of ${this.deps.zone}`,
      'NoMountTargetInZone',
      { fileSystemId, zone: this.deps.zone },
    );
  }

  private async describe(fileSystemId: string, ctx: OperationContext): Promise<MountTargetDescription[]> {
    const found: MountTargetDescription[] = [];
    let marker: string | undefined;
    try {
      do {
        const page = await callAws(
          this.deps.counter,
          'DescribeMountTargets',
          () => this.deps.efs.send(new DescribeMountTargetsCommand({ FileSystemId: fileSystemId, ...(marker && { Marker: marker }) })),
          { deadline: ctx.deadline, log: ctx.log, context: { fileSystemId } },
        );
        found.push(...(page.MountTargets ?? []));
        marker = page.NextMarker;
      } while (marker);
    } catch (err) {
      if (hasCode(err, 'FileSystemNotFound')) {
        throw new CloudError(
          `EFS file system ${fileSystemId} does not exist in this region: check STOWAGE_EFS_ID / STOWAGE_EFS_MAXIO_ID and AWS_REGION`,
          'FileSystemNotFound',
          { fileSystemId, requestId: err.context.requestId },
          { cause: err },
        );
      }
      throw err;
    }
    return found;
  }
}
