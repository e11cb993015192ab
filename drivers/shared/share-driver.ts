import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Driver, VolumeInfo } from '../driver.js';
import type { OperationContext } from '../../core/context.js';
import type { Host } from '../../host/host.js';
import { DataSafetyError, VolumeNotFoundError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { Backing, VolumeOptions } from '../../core/volume-options.js';
import { VOLUME_FLAGS, withFlags, type Mounter, type ShareSource } from './mounter.js';
import type { ShareRoots } from './share-roots.js';
import { VolumeFolders, removedPath, volumePath, type FolderIdentity, type FolderVolume } from './volume-folders.js';
import type { Holders } from './volume-holders.js';
import { unmountShare } from './volume-mounts.js';

/** One share volumes live on: an EFS file system, or an NFS export. */
export interface ShareRef {
  /** Unique per share; names its root's mount point under `.shares/`. */
  key: string;
  /** What every volume on this share has as options (perfmode, share). */
  options: Partial<VolumeOptions>;
  /** Shown in every volume's Status. */
  status: Record<string, string>;
}

/** What differs between EFS and plain NFS: which shares exist and how to reach them from this node. */
export interface ShareLocator {
  readonly backing: Backing;
  /** The shares to look on for existing volumes. */
  known(): ShareRef[];
  /** The share a new volume with these options goes on; a clear error when there is none. */
  forCreate(options: VolumeOptions, ctx: OperationContext): Promise<ShareRef>;
  /** How to mount `path` (absolute, from the share's root) on this node (EFS: through this zone's mount target). */
  source(share: ShareRef, path: string, ctx: OperationContext): Promise<ShareSource>;
}

/** What every shared backing mounts and manages its volumes with. */
export interface ShareBackingDeps {
  roots: ShareRoots;
  mounter: Mounter;
  host: Host;
  cluster: string;
  mountRoot: string;
  /** STOWAGE_SHARED_DELETE: Remove deletes the data; else it is kept under `.removed/`. */
  sharedDelete: boolean;
  /** Which nodes mount which volume, on the shares themselves. */
  holders: Holders;
}

export interface ShareDriverDeps extends ShareBackingDeps {
  locator: ShareLocator;
  /** How old a share's listing may be for List and Get (default 5 s). */
  cacheTtlMs?: number;
  now?: () => number;
}

/** A shared backing's driver: it keeps share roots mounted, which the plugin's shutdown unmounts. */
export interface SharedDriver extends Driver {
  close(log: Logger): Promise<void>;
}

/** What Remove does with the data, for Status and for the operator reading it. */
export function onRemoveStatus(cluster: string, sharedDelete: boolean): string {
  return sharedDelete
    ? 'data deleted (STOWAGE_SHARED_DELETE=true)'
    : `data kept under ${removedPath(cluster)}/ (set STOWAGE_SHARED_DELETE=true to delete)`;
}

/**
 * Volumes that are directories on a share (EFS directory mode, plain NFS): many nodes mount them
 * at once, so there is nothing to attach or fence; the directory's existence is the volume.
 */
export class ShareDriver implements Driver {
  readonly backing: Backing;
  private readonly listings = new Map<string, { at: number; volumes: Promise<FolderVolume[]> }>();
  private readonly now: () => number;

  constructor(private readonly deps: ShareDriverDeps) {
    this.backing = deps.locator.backing;
    this.now = deps.now ?? Date.now;
  }

  mountpointOf(name: string): string {
    return join(this.deps.mountRoot, name);
  }

  async create(name: string, options: VolumeOptions, ctx: OperationContext): Promise<void> {
    const share = await this.deps.locator.forCreate(options, ctx);
    const folders = await this.folders(share, ctx);
    const outcome = await folders.create(name, options);
    this.listings.delete(share.key);
    ctx.log.info({ ...share.status, uid: options.uid, gid: options.gid, mode: options.mode, outcome }, 'volume directory ready');
  }

  async get(name: string, ctx: OperationContext): Promise<VolumeInfo | undefined> {
    for (const share of this.deps.locator.known()) {
      const folders = await this.foldersOrNothing(share, ctx);
      const found = await folders?.read(name);
      if (found) return this.info(share, found);
    }
    return undefined;
  }

  async list(ctx: OperationContext): Promise<VolumeInfo[]> {
    const all = await Promise.all(
      this.deps.locator.known().map(async (share) => (await this.listing(share, ctx)).map((v) => this.info(share, v))),
    );
    return all.flat();
  }

  async remove(name: string, ctx: OperationContext): Promise<void> {
    const { share, folders } = await this.locate(name, ctx);
    const keptAt = await retireUnheld(this.deps, folders, name, ctx);
    this.listings.delete(share.key);
    if (keptAt) ctx.log.info({ ...share.status, keptAt }, 'volume removed; its data is kept (STOWAGE_SHARED_DELETE is off)');
    else ctx.log.info({ ...share.status }, 'volume removed with its data');
  }

  async mount(name: string, ctx: OperationContext): Promise<string> {
    const { share, folders } = await this.locate(name, ctx);
    const target = this.mountpointOf(name);
    // Recorded before the mount: a Remove elsewhere that misses the record finds the name gone.
    await this.deps.holders.hold(folders, name, ctx.log);
    try {
      const expected = await folders.identity(name);
      if (!expected) throw new VolumeNotFoundError(name, { backing: this.backing });
      const source = withFlags(await this.deps.locator.source(share, volumePath(this.deps.cluster, name), ctx), VOLUME_FLAGS);
      await this.deps.mounter.mount(source, target, ctx.log);
      await this.checkMounted(name, target, expected, ctx);
      ctx.log.info({ ...share.status, server: source.server, path: source.path, target }, 'shared volume mounted');
    } catch (err) {
      if (!(await this.deps.host.mountAt(target))) await this.deps.holders.release(folders, name).catch(() => undefined);
      throw err;
    }
    return target;
  }

  async isMounted(name: string): Promise<boolean> {
    return (await this.deps.host.mountAt(this.mountpointOf(name))) !== undefined;
  }

  async unmount(name: string, ctx: OperationContext): Promise<void> {
    await unmountShare(this.deps.host, this.mountpointOf(name), ctx.deadline, ctx.log);
    await releaseEverywhere(this.deps.locator.known().map((share) => () => this.folders(share, ctx)), this.deps.holders, name, ctx);
  }

  /** See Holders.resume: run once at start, for the volumes a restarted plugin finds still mounted. */
  async resume(ctx: OperationContext): Promise<void> {
    const here = await mountedVolumes(this.deps.host, this.deps.mountRoot);
    if (here.size === 0) return;
    for (const share of this.deps.locator.known()) await this.deps.holders.resume(await this.folders(share, ctx), here, ctx.log);
  }

  /**
   * The mount resolved `/stowage/<cluster>/<name>` by its path once more; a link swapped in after
   * the check would have led elsewhere. What is mounted must be the directory checked through the
   * share's root (the NFS client shares one superblock per server, so device numbers compare).
   */
  private async checkMounted(name: string, target: string, expected: FolderIdentity, ctx: OperationContext): Promise<void> {
    const got = await stat(target);
    if (got.dev === expected.dev && got.ino === expected.ino) return;
    await unmountShare(this.deps.host, target, ctx.deadline, ctx.log);
    throw new DataSafetyError(
      `the mount of ${volumePath(this.deps.cluster, name)} is not the volume's directory on the share (it changed while mounting: a planted link?); unmounted it`,
      { volume: name, target },
    );
  }

  private async locate(name: string, ctx: OperationContext): Promise<{ share: ShareRef; folders: VolumeFolders }> {
    for (const share of this.deps.locator.known()) {
      const folders = await this.folders(share, ctx);
      if (await folders.read(name)) return { share, folders };
    }
    throw new VolumeNotFoundError(name, { backing: this.backing });
  }

  private async folders(share: ShareRef, ctx: OperationContext): Promise<VolumeFolders> {
    const root = await this.deps.roots.open(share.key, () => this.deps.locator.source(share, '/', ctx), ctx.log);
    return new VolumeFolders(root, this.deps.cluster);
  }

  /** For Get and List: a share that cannot be reached hides its volumes, with a warning, instead of failing every backing's requests. */
  private async foldersOrNothing(share: ShareRef, ctx: OperationContext): Promise<VolumeFolders | undefined> {
    try {
      return await this.folders(share, ctx);
    } catch (err) {
      ctx.log.warn({ err, ...share.status }, 'share unreachable; its volumes are not listed');
      return undefined;
    }
  }

  private listing(share: ShareRef, ctx: OperationContext): Promise<FolderVolume[]> {
    const cached = this.listings.get(share.key);
    if (cached && this.now() - cached.at < (this.deps.cacheTtlMs ?? 5000)) return cached.volumes;
    const volumes = this.foldersOrNothing(share, ctx)
      .then((f) => f?.list() ?? [])
      .catch((err: unknown) => {
        // A share whose cluster folder is refused (a planted link) hides its volumes, like an unreachable one.
        ctx.log.warn({ err, ...share.status }, 'cannot list the volumes on this share');
        this.listings.delete(share.key);
        return [];
      });
    this.listings.set(share.key, { at: this.now(), volumes });
    return volumes;
  }

  private info(share: ShareRef, v: FolderVolume): VolumeInfo {
    return {
      name: v.name,
      backing: this.backing,
      ...(v.createdAt && { createdAt: v.createdAt }),
      status: { ...share.status, path: volumePath(this.deps.cluster, v.name), uid: v.uid, gid: v.gid, mode: v.mode, onRemove: onRemoveStatus(this.deps.cluster, this.deps.sharedDelete) },
      // Not uid/gid/mode: they are the directory's now, which containers may change on purpose; a
      // Create repeating the original options must not be refused for that.
      options: { ...share.options },
    };
  }
}

/**
 * Remove's part that is the same for every shared backing: refused while another node holds the
 * volume, checked again once the name is free (a Mount that started meanwhile puts it back).
 */
export async function retireUnheld(deps: Pick<ShareBackingDeps, 'holders' | 'sharedDelete'>, folders: VolumeFolders, name: string, ctx: OperationContext): Promise<string | undefined> {
  const check = (): Promise<void> => deps.holders.check(folders, name, ctx.deadline, ctx.log);
  await check();
  const keptAt = await folders.retire(name, deps.sharedDelete, check);
  await deps.holders.forget(folders, name);
  return keptAt;
}

/** After an unmount: this node's record goes from whichever share holds it; a failure only warns (the mount is gone). */
export async function releaseEverywhere(shares: (() => Promise<VolumeFolders>)[], holders: Holders, name: string, ctx: OperationContext): Promise<void> {
  for (const open of shares) {
    await open()
      .then((folders) => holders.release(folders, name))
      .catch((err: unknown) => ctx.log.warn({ err }, 'cannot clear this node\'s holder record; other nodes will see it go stale'));
  }
}

/** Names of what is mounted directly under the mount root (volumes of any backing; `.shares` is not one). */
export async function mountedVolumes(host: Host, mountRoot: string): Promise<Set<string>> {
  const prefix = `${mountRoot.replace(/\/+$/, '')}/`;
  return new Set(
    (await host.mounts())
      .map((m) => m.target)
      .filter((t) => t.startsWith(prefix) && !t.slice(prefix.length).includes('/') && !t.slice(prefix.length).startsWith('.'))
      .map((t) => t.slice(prefix.length)),
  );
}

/** Starts `resume` in the background: the driver answers requests meanwhile, and a failure only warns. */
export function resumeHolders(driver: { resume(ctx: OperationContext): Promise<void> }, log: Logger): void {
  driver.resume({ deadline: Date.now() + 120_000, log }).catch((err: unknown) => log.warn({ err }, 'cannot resume the holder records of volumes still mounted here'));
}
