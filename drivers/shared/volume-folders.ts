import { chmod, chown, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Stats } from 'node:fs';

/** A shared volume's root directory as found on its share. */
export interface FolderVolume {
  name: string;
  uid: number;
  gid: number;
  mode: string;
  createdAt: string | undefined;
}

/** Volume names never start with a dot, so these never collide with a volume. */
const REMOVED_DIR = '.removed';

/** Where every share keeps the cluster's volumes: `/stowage/<cluster>/<name>` (Cloudstor's layout). */
export function clusterPath(cluster: string): string {
  return `/stowage/${cluster}`;
}

export function volumePath(cluster: string, name: string): string {
  return `${clusterPath(cluster)}/${name}`;
}

/** Where a removed volume's data is kept when STOWAGE_SHARED_DELETE is off. */
export function removedPath(cluster: string): string {
  return `${clusterPath(cluster)}/${REMOVED_DIR}`;
}

function toVolume(name: string, st: Stats): FolderVolume {
  const born = st.birthtimeMs > 0 ? st.birthtime : st.ctime;
  return { name, uid: st.uid, gid: st.gid, mode: (st.mode & 0o7777).toString(8).padStart(4, '0'), createdAt: born.toISOString() };
}

function isErrno(err: unknown, ...codes: string[]): boolean {
  const code = typeof err === 'object' && err !== null ? (err as NodeJS.ErrnoException).code : undefined;
  return code !== undefined && codes.includes(code);
}

/**
 * The cluster's volume directories on one share, through the folder where the share's root is
 * mounted on this node. Shared by EFS (directory and access point modes) and plain NFS.
 */
export class VolumeFolders {
  constructor(
    /** Local folder where the share's root is mounted. */
    private readonly root: string,
    private readonly cluster: string,
  ) {}

  private local(path: string): string {
    return join(this.root, path);
  }

  /**
   * Makes the directory with the volume's owner and mode. An existing one is adopted as it is:
   * its owner may have been changed on purpose by the containers that use it.
   */
  async create(name: string, owner: { uid: number; gid: number; mode: string }): Promise<'created' | 'adopted'> {
    await mkdir(this.local(clusterPath(this.cluster)), { recursive: true, mode: 0o755 });
    const dir = this.local(volumePath(this.cluster, name));
    try {
      await mkdir(dir, { mode: 0o700 });
    } catch (err) {
      if (isErrno(err, 'EEXIST') && (await stat(dir)).isDirectory()) return 'adopted';
      throw err;
    }
    await chown(dir, owner.uid, owner.gid);
    // chmod after chown: chown clears set-id bits, and the umask narrowed mkdir's mode.
    await chmod(dir, parseInt(owner.mode, 8));
    return 'created';
  }

  async read(name: string): Promise<FolderVolume | undefined> {
    try {
      const st = await stat(this.local(volumePath(this.cluster, name)));
      return st.isDirectory() ? toVolume(name, st) : undefined;
    } catch (err) {
      if (isErrno(err, 'ENOENT', 'ENOTDIR')) return undefined;
      throw err;
    }
  }

  async list(): Promise<FolderVolume[]> {
    let entries;
    try {
      entries = await readdir(this.local(clusterPath(this.cluster)), { withFileTypes: true });
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
    const names = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
    const found = await Promise.all(names.map((name) => this.read(name)));
    return found.filter((v): v is FolderVolume => v !== undefined);
  }

  /**
   * Takes the volume's directory out of the cluster: deleted with `deleteData`, else moved under
   * `.removed/` (so a new volume of that name starts empty). Returns where the data went.
   */
  async retire(name: string, deleteData: boolean, now: Date = new Date()): Promise<string | undefined> {
    const dir = this.local(volumePath(this.cluster, name));
    const keptAt = `${removedPath(this.cluster)}/${name}-${now.toISOString().replace(/[:.]/g, '-')}`;
    await mkdir(this.local(removedPath(this.cluster)), { recursive: true, mode: 0o700 });
    try {
      // Rename first, also when deleting: the name is free at once, however long the delete takes.
      await rename(dir, this.local(keptAt));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      throw err;
    }
    if (!deleteData) return keptAt;
    await rm(this.local(keptAt), { recursive: true, force: true });
    return undefined;
  }
}
