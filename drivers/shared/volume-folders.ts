import type { Stats } from 'node:fs';
import { AnchoredDir, using } from '../../host/anchored-dir.js';
import { DataSafetyError } from '../../core/errors.js';

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

/** `<volume>-<removal time>` under `.removed/`: the name records when Remove kept the data aside. */
export function keptEntry(name: string, removedAt: Date): string {
  return `${name}-${removedAt.toISOString().replace(/[:.]/g, '-')}`;
}

const KEPT_ENTRY = /^(.+)-(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})-(\d{3})Z$/;

/** The volume and removal time a kept entry's name records; undefined for a name Remove did not make. */
export function parseKeptEntry(entry: string): { name: string; removedAt: Date } | undefined {
  const m = KEPT_ENTRY.exec(entry);
  if (!m) return undefined;
  const removedAt = new Date(`${m[2]}T${m[3]}:${m[4]}:${m[5]}.${m[6]}Z`);
  return Number.isNaN(removedAt.getTime()) ? undefined : { name: m[1]!, removedAt };
}

/** The cluster folder's path components below a share's root. */
export function clusterComponents(cluster: string): [string, string] {
  return ['stowage', cluster];
}

function toVolume(name: string, st: Stats): FolderVolume {
  const born = st.birthtimeMs > 0 ? st.birthtime : st.ctime;
  return { name, uid: st.uid, gid: st.gid, mode: (st.mode & 0o7777).toString(8).padStart(4, '0'), createdAt: born.toISOString() };
}

/** Where a volume's directory is, to check that what got mounted is that directory. */
export interface FolderIdentity {
  dev: number;
  ino: number;
}

/**
 * The cluster's volume directories on one share, through the folder where the share's root is
 * mounted on this node. Shared by EFS (directory and access point modes) and plain NFS. The share
 * is hostile ground: every path is walked with AnchoredDir, so no planted link is ever followed.
 */
export class VolumeFolders {
  constructor(
    /** Local folder where the share's root is mounted. */
    readonly root: string,
    private readonly cluster: string,
  ) {}

  /** Runs `body` on the cluster folder (made first when `create`); undefined when it is absent. */
  async inCluster<T>(create: boolean, body: (cluster: AnchoredDir) => Promise<T>): Promise<T | undefined> {
    const cluster = await using(await AnchoredDir.open(this.root, this.root), (root) => root.descend(clusterComponents(this.cluster), create ? 0o755 : undefined));
    return cluster && using(cluster, body);
  }

  /**
   * Makes the directory with the volume's owner and mode. An existing one is adopted as it is:
   * its owner may have been changed on purpose by the containers that use it.
   */
  async create(name: string, owner: { uid: number; gid: number; mode: string }): Promise<'created' | 'adopted'> {
    const outcome = await this.inCluster(true, async (cluster) => {
      const made = await cluster.mkdir(name, 0o700);
      return using(await cluster.need(name), async (dir) => {
        if (!made) return 'adopted' as const;
        await dir.chown(owner.uid, owner.gid);
        // chmod after chown: chown clears set-id bits, and the umask narrowed mkdir's mode.
        await dir.chmod(parseInt(owner.mode, 8));
        return 'created' as const;
      });
    });
    return outcome!;
  }

  /** The volume; a link or a file where its directory should be is refused. */
  async read(name: string): Promise<FolderVolume | undefined> {
    return this.inCluster(false, (cluster) => readIn(cluster, name));
  }

  /** The volume directory's device and inode, as seen through the share's root. */
  async identity(name: string): Promise<FolderIdentity | undefined> {
    return this.inCluster(false, async (cluster) => {
      const dir = await cluster.child(name);
      if (!dir) return undefined;
      const st = await using(dir, (d) => d.stat());
      return { dev: st.dev, ino: st.ino };
    });
  }

  /** Every volume directory; an entry that is a link or turns into one while listed is not a volume. */
  async list(): Promise<FolderVolume[]> {
    const found = await this.inCluster(false, async (cluster) => {
      const names = (await cluster.entries()).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
      const read = await Promise.all(names.map((name) => readIn(cluster, name).catch((err: unknown) => (err instanceof DataSafetyError ? undefined : Promise.reject(err)))));
      return read.filter((v): v is FolderVolume => v !== undefined);
    });
    return found ?? [];
  }

  /**
   * Takes the volume's directory out of the cluster: deleted with `deleteData`, else moved under
   * `.removed/` (0700, so a new volume of that name starts empty) and made mode 000, so nothing on
   * the share uses it by accident. `recheck` runs once the name is free: when it throws (a node
   * started using the volume meanwhile), the directory is put back. Returns where the data went.
   */
  async retire(name: string, deleteData: boolean, recheck: () => Promise<void>, now: Date = new Date()): Promise<string | undefined> {
    const kept = await this.inCluster(false, async (cluster) => {
      const dir = await cluster.child(name);
      if (!dir) return undefined;
      await dir.close();
      await cluster.mkdir(REMOVED_DIR, 0o700);
      return using(await cluster.need(REMOVED_DIR), async (removed) => {
        // Forced on every Remove: a folder made by an older version, or by someone else, may be open.
        await removed.chmod(0o700);
        const entry = keptEntry(name, now);
        // Rename first, also when deleting: the name is free at once, however long the delete takes.
        try {
          await cluster.rename(name, removed, entry);
        } catch (err) {
          // Gone since it was found: another node's Remove got there first.
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
          throw err;
        }
        try {
          await recheck();
        } catch (err) {
          await removed.rename(entry, cluster, name);
          throw err;
        }
        if (deleteData) {
          await removed.removeTree(entry);
          return null;
        }
        await using(await removed.need(entry), (d) => d.chmod(0));
        return entry;
      });
    });
    return kept ? `${removedPath(this.cluster)}/${kept}` : undefined;
  }
}

/** Data Remove kept aside, by the removal time its name records. */
export interface KeptData {
  entry: string;
  name: string;
  removedAt: Date;
}

/** What Remove kept aside on one share, for gc: listed and deleted without following any link. */
export class KeptFolders {
  private readonly folders: VolumeFolders;

  constructor(root: string, cluster: string) {
    this.folders = new VolumeFolders(root, cluster);
  }

  /** Entries whose name is not one Remove makes are not ours and are left alone. */
  async list(): Promise<KeptData[]> {
    const found = await this.folders.inCluster(false, async (cluster) => {
      const removed = await cluster.child(REMOVED_DIR);
      if (!removed) return [];
      const entries = await using(removed, (r) => r.entries());
      return entries.flatMap((e) => {
        const parsed = parseKeptEntry(e.name);
        return parsed ? [{ entry: e.name, ...parsed }] : [];
      });
    });
    return (found ?? []).sort((a, b) => a.entry.localeCompare(b.entry));
  }

  async delete(entry: string): Promise<void> {
    await this.folders.inCluster(false, async (cluster) => {
      const removed = await cluster.child(REMOVED_DIR);
      if (removed) await using(removed, (r) => r.removeTree(entry));
    });
  }
}

async function readIn(cluster: AnchoredDir, name: string): Promise<FolderVolume | undefined> {
  const dir = await cluster.child(name);
  return dir && toVolume(name, await using(dir, (d) => d.stat()));
}
