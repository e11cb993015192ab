import {
  CreateAccessPointCommand,
  DeleteAccessPointCommand,
  DescribeAccessPointsCommand,
  type AccessPointDescription,
  type EFSClient,
} from '@aws-sdk/client-efs';
import { callAws } from '../../aws/call.js';
import type { CallCounter } from '../../aws/call-counter.js';
import { hasCode } from '../../aws/errors.js';
import { CloudError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { VolumeOptions } from '../../core/volume-options.js';
import { Tags } from '../../core/schema/tags.js';
import { accessPointToken } from '../../core/schema/client-token.js';
import { volumePath } from '../shared/volume-folders.js';
import { allPages } from '../../aws/pages.js';

/** One of the cluster's access points: a shared volume in access point mode. */
export interface VolumeAccessPoint {
  id: string;
  name: string;
  fileSystemId: string;
  state: string;
  rootDirectory: string;
  uid: number;
  gid: number;
  mode: string;
}

export interface AccessPointsDeps {
  efs: EFSClient;
  counter: CallCounter;
  cluster: string;
  ttlMs: number;
  now: () => number;
}

interface Call {
  deadline: number;
  log: Logger;
}

function tagOf(ap: AccessPointDescription, key: string): string | undefined {
  return ap.Tags?.find((t) => t.Key === key)?.Value;
}

/**
 * The cluster's access points on each file system: List and Get read one cached, paginated
 * DescribeAccessPoints per file system; Create and Delete invalidate it.
 */
export class AccessPoints {
  private readonly listings = new Map<string, { at: number; found: Promise<VolumeAccessPoint[]> }>();

  constructor(private readonly deps: AccessPointsDeps) {}

  /** The cluster's access points on `fileSystemId`, at most ttlMs old unless `fresh`. */
  all(fileSystemId: string, call: Call, fresh = false): Promise<VolumeAccessPoint[]> {
    const cached = this.listings.get(fileSystemId);
    if (!fresh && cached && this.deps.now() - cached.at < this.deps.ttlMs) return cached.found;
    const found = this.describe(fileSystemId, call);
    found.catch(() => this.listings.get(fileSystemId)?.found === found && this.listings.delete(fileSystemId));
    this.listings.set(fileSystemId, { at: this.deps.now(), found });
    return found;
  }

  /** One access point by id, from EFS (to see it leave `creating`). */
  async one(fileSystemId: string, id: string, call: Call): Promise<VolumeAccessPoint | undefined> {
    return (await this.describe(fileSystemId, call, id))[0];
  }

  /** Creates the volume's access point; the client token makes a repeat (any node) return the same one. */
  async create(fileSystemId: string, name: string, options: VolumeOptions, call: Call): Promise<VolumeAccessPoint> {
    const { cluster } = this.deps;
    const context = { fileSystemId };
    try {
      const ap = await callAws(
        this.deps.counter,
        'CreateAccessPoint',
        () =>
          this.deps.efs.send(
            new CreateAccessPointCommand({
              ClientToken: accessPointToken(cluster, name),
              FileSystemId: fileSystemId,
              PosixUser: { Uid: options.uid, Gid: options.gid },
              RootDirectory: {
                Path: volumePath(cluster, name),
                CreationInfo: { OwnerUid: options.uid, OwnerGid: options.gid, Permissions: options.mode },
              },
              Tags: [
                { Key: Tags.cluster, Value: cluster },
                { Key: Tags.volume, Value: name },
                { Key: Tags.backing, Value: 'shared' },
                { Key: 'Name', Value: `stowage-${cluster}-${name}` },
              ],
            }),
          ),
        { ...call, context },
      );
      return this.toVolume(ap)!;
    } catch (err) {
      if (hasCode(err, 'AccessPointLimitExceeded')) {
        throw new CloudError(
          `EFS file system ${fileSystemId} has as many access points as EFS allows (1000 per file system); remove unused volumes, or use STOWAGE_EFS_MODE=directory, which has no such limit`,
          'AccessPointLimitExceeded',
          { ...context, requestId: err.context.requestId },
          { cause: err },
        );
      }
      throw err;
    } finally {
      this.listings.delete(fileSystemId);
    }
  }

  async delete(fileSystemId: string, id: string, call: Call): Promise<void> {
    try {
      await callAws(this.deps.counter, 'DeleteAccessPoint', () => this.deps.efs.send(new DeleteAccessPointCommand({ AccessPointId: id })), {
        ...call,
        context: { fileSystemId, accessPoint: id },
      });
    } catch (err) {
      // Already gone (a retried Remove whose first delete went through): the goal is reached.
      if (!hasCode(err, 'AccessPointNotFound')) throw err;
    } finally {
      this.listings.delete(fileSystemId);
    }
  }

  private async describe(fileSystemId: string, call: Call, accessPointId?: string): Promise<VolumeAccessPoint[]> {
    const found = await allPages(
      (token) =>
        callAws(
          this.deps.counter,
          'DescribeAccessPoints',
          () =>
            this.deps.efs.send(
              new DescribeAccessPointsCommand({
                ...(accessPointId ? { AccessPointId: accessPointId } : { FileSystemId: fileSystemId }),
                MaxResults: 100,
                NextToken: token,
              }),
            ),
          { ...call, context: { fileSystemId } },
        ),
      (page) => page.AccessPoints,
    );
    return found.map((ap) => this.toVolume(ap)).filter((v): v is VolumeAccessPoint => v !== undefined);
  }

  /** undefined for an access point that is not one of this cluster's volumes. */
  private toVolume(ap: AccessPointDescription): VolumeAccessPoint | undefined {
    const name = tagOf(ap, Tags.volume);
    if (tagOf(ap, Tags.cluster) !== this.deps.cluster || !name || !ap.AccessPointId || !ap.FileSystemId) return undefined;
    const info = ap.RootDirectory?.CreationInfo;
    return {
      id: ap.AccessPointId,
      name,
      fileSystemId: ap.FileSystemId,
      state: ap.LifeCycleState ?? 'unknown',
      rootDirectory: ap.RootDirectory?.Path ?? '/',
      uid: Number(ap.PosixUser?.Uid ?? info?.OwnerUid ?? 0),
      gid: Number(ap.PosixUser?.Gid ?? info?.OwnerGid ?? 0),
      mode: (info?.Permissions ?? '755').padStart(4, '0'),
    };
  }
}
