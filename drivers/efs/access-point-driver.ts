import { join } from 'node:path';
import type { Driver, VolumeInfo } from '../driver.js';
import type { OperationContext } from '../../core/context.js';
import { PendingError, VolumeNotFoundError } from '../../core/errors.js';
import type { VolumeOptions } from '../../core/volume-options.js';
import { delay } from '../../core/delay.js';
import { EFS_NFS_OPTIONS, VOLUME_FLAGS } from '../shared/mounter.js';
import { mountedVolumes, onRemoveStatus, releaseEverywhere, retireUnheld, type ShareBackingDeps, type ShareRef } from '../shared/share-driver.js';
import { VolumeFolders } from '../shared/volume-folders.js';
import { unmountShare } from '../shared/volume-mounts.js';
import type { AccessPoints, VolumeAccessPoint } from './access-points.js';
import { fileSystemFor, fileSystemShares, type EfsFileSystems } from './file-systems.js';
import type { MountTargets } from './mount-targets.js';

export interface AccessPointDriverDeps extends ShareBackingDeps {
  accessPoints: AccessPoints;
  mountTargets: MountTargets;
  fileSystems: EfsFileSystems;
  pollInitialMs?: number;
}

/**
 * EFS access point mode (the EFS CSI driver's): each volume is an access point whose root is
 * `/stowage/<cluster>/<name>`, created by EFS with the volume's owner and mode, and entered by the
 * EFS mount helper with TLS. The access point is the volume; its tags say whose it is.
 */
export class AccessPointDriver implements Driver {
  readonly backing = 'shared' as const;
  private readonly shares: ShareRef[];

  constructor(private readonly deps: AccessPointDriverDeps) {
    this.shares = fileSystemShares(deps.fileSystems, 'accesspoint');
  }

  mountpointOf(name: string): string {
    return join(this.deps.mountRoot, name);
  }

  async create(name: string, options: VolumeOptions, ctx: OperationContext): Promise<void> {
    const fileSystemId = fileSystemFor(this.deps.fileSystems, options.perfmode);
    const existing = (await this.deps.accessPoints.all(fileSystemId, ctx, true)).find((ap) => ap.name === name);
    const ap = existing ?? (await this.deps.accessPoints.create(fileSystemId, name, options, ctx));
    ctx.log.info({ fileSystemId, accessPoint: ap.id, rootDirectory: ap.rootDirectory, adopted: existing !== undefined }, 'access point ready');
  }

  async get(name: string, ctx: OperationContext): Promise<VolumeInfo | undefined> {
    return (await this.list(ctx)).find((v) => v.name === name);
  }

  async list(ctx: OperationContext): Promise<VolumeInfo[]> {
    const all = await Promise.all(
      this.shares.map(async (share) => {
        try {
          return (await this.deps.accessPoints.all(share.key, ctx)).map((ap) => this.info(share, ap));
        } catch (err) {
          // One unreachable file system must not fail every backing's requests.
          ctx.log.warn({ err, ...share.status }, 'cannot list access points; their volumes are not listed');
          return [];
        }
      }),
    );
    return all.flat();
  }

  async remove(name: string, ctx: OperationContext): Promise<void> {
    const { share, ap } = await this.locate(name, ctx);
    // Data first: a Remove that fails after it is retried and finds the access point still there.
    const keptAt = await retireUnheld(this.deps, await this.folders(share, ctx), name, ctx);
    await this.deps.accessPoints.delete(share.key, ap.id, ctx);
    ctx.log.info({ ...share.status, accessPoint: ap.id, ...(keptAt && { keptAt }) }, keptAt ? 'access point deleted; its data is kept (STOWAGE_SHARED_DELETE is off)' : 'access point deleted with its data');
  }

  async mount(name: string, ctx: OperationContext): Promise<string> {
    const { share, ap } = await this.available(name, ctx);
    const server = await this.deps.mountTargets.inZone(share.key, ctx);
    const target = this.mountpointOf(name);
    const folders = await this.folders(share, ctx);
    // Recorded before the mount: a Remove elsewhere that misses the record finds the name gone.
    await this.deps.holders.hold(folders, name, ctx.log);
    try {
      await this.deps.mounter.mount(
        { server, path: '/', options: [...EFS_NFS_OPTIONS, ...VOLUME_FLAGS], accessPoint: { id: ap.id, fileSystemId: ap.fileSystemId, rootDirectory: ap.rootDirectory } },
        target,
        ctx.log,
      );
    } catch (err) {
      if (!(await this.deps.host.mountAt(target))) await this.deps.holders.release(folders, name).catch(() => undefined);
      throw err;
    }
    ctx.log.info({ ...share.status, accessPoint: ap.id, server, target }, 'shared volume mounted through its access point');
    return target;
  }

  async isMounted(name: string): Promise<boolean> {
    return (await this.deps.host.mountAt(this.mountpointOf(name))) !== undefined;
  }

  async unmount(name: string, ctx: OperationContext): Promise<void> {
    await unmountShare(this.deps.host, this.mountpointOf(name), ctx.deadline, ctx.log);
    await releaseEverywhere(this.shares.map((share) => () => this.folders(share, ctx)), this.deps.holders, name, ctx);
  }

  /** See Holders.resume: run once at start, for the volumes a restarted plugin finds still mounted. */
  async resume(ctx: OperationContext): Promise<void> {
    const here = await mountedVolumes(this.deps.host, this.deps.mountRoot);
    if (here.size === 0) return;
    for (const share of this.shares) await this.deps.holders.resume(await this.folders(share, ctx), here, ctx.log);
  }

  /** The file system's root, mounted for management: kept data and holder records live there. */
  private async folders(share: ShareRef, ctx: OperationContext): Promise<VolumeFolders> {
    const root = await this.deps.roots.open(share.key, () => this.deps.mountTargets.source(share.key, '/', ctx), ctx.log);
    return new VolumeFolders(root, this.deps.cluster);
  }

  private async locate(name: string, ctx: OperationContext): Promise<{ share: ShareRef; ap: VolumeAccessPoint }> {
    for (const share of this.shares) {
      const ap = (await this.deps.accessPoints.all(share.key, ctx, true)).find((a) => a.name === name);
      if (ap) return { share, ap };
    }
    throw new VolumeNotFoundError(name, { backing: 'shared' });
  }

  /** The access point once EFS says `available` (a few seconds after its creation). */
  private async available(name: string, ctx: OperationContext): Promise<{ share: ShareRef; ap: VolumeAccessPoint }> {
    let waitMs = this.deps.pollInitialMs ?? 1000;
    for (;;) {
      const { share, ap } = await this.locate(name, ctx);
      if (ap.state === 'available') return { share, ap };
      if (Date.now() + waitMs >= ctx.deadline) {
        throw new PendingError(`access point ${ap.id} of volume ${name} is ${ap.state}; retry shortly`, { volume: name, accessPoint: ap.id, ...share.status });
      }
      await delay(waitMs);
      waitMs = Math.round(waitMs * 1.5);
    }
  }

  private info(share: ShareRef, ap: VolumeAccessPoint): VolumeInfo {
    return {
      name: ap.name,
      backing: 'shared',
      status: {
        ...share.status, accessPoint: ap.id, state: ap.state, path: ap.rootDirectory, uid: ap.uid, gid: ap.gid, mode: ap.mode,
        onRemove: onRemoveStatus(this.deps.cluster, this.deps.sharedDelete),
      },
      options: { ...share.options, uid: ap.uid, gid: ap.gid, mode: ap.mode },
    };
  }
}
