import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import type { Dirent, Stats } from 'node:fs';
import { DataSafetyError, HostError } from '../core/errors.js';
import { isErrno } from './errno.js';

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
/** Small records only (holder markers, heartbeats): a planted huge file is refused, not read. */
const MAX_RECORD_BYTES = 4096;

/**
 * A directory on a share that anyone with access to the share may rearrange under us, held by an
 * open file descriptor rather than by its path.
 *
 * Node has no openat2(RESOLVE_BENEATH), so each directory is opened one component at a time with
 * O_NOFOLLOW|O_DIRECTORY, and everything below it is reached through `/proc/self/fd/N/<name>`: the
 * kernel follows that magic link to the very directory the descriptor holds (never re-resolving a
 * path string), and only the single final `<name>` is looked up, with calls that never follow a
 * final symlink (mkdir, rmdir, unlink, rename, lstat, open with O_NOFOLLOW). Owner and mode are set
 * through the descriptor (fchown, fchmod). So a link planted or swapped in at any moment is either
 * refused (ELOOP/ENOTDIR at open) or acted on as the link itself; no call ever passes through it.
 */
export class AnchoredDir {
  private constructor(
    private readonly handle: FileHandle,
    /** Where this is, for errors and logs (`<share>:/stowage/…`). */
    readonly path: string,
  ) {}

  /** A trusted local directory (a share's mount point) as the anchor for everything below it. */
  static async open(local: string, shown: string): Promise<AnchoredDir> {
    try {
      return new AnchoredDir(await open(local, DIR_FLAGS), shown);
    } catch (err) {
      throw new HostError(`cannot open ${shown} (${local}): ${errText(err)}`, { path: shown }, { cause: err });
    }
  }

  private at(name: string): string {
    return `/proc/self/fd/${this.handle.fd}/${checkName(name, this.path)}`;
  }

  private shown(name: string): string {
    return `${this.path}/${name}`;
  }

  /** Makes the directory `name` here; false when something by that name is already there. */
  async mkdir(name: string, mode: number): Promise<boolean> {
    try {
      await mkdir(this.at(name), { mode });
      return true;
    } catch (err) {
      if (isErrno(err, 'EEXIST')) return false;
      throw err;
    }
  }

  /**
   * The directory `name` in this one; undefined when absent. A symlink or any other non-directory
   * in its place is a DataSafetyError naming the path.
   */
  async child(name: string): Promise<AnchoredDir | undefined> {
    try {
      return new AnchoredDir(await open(this.at(name), DIR_FLAGS), this.shown(name));
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      if (isErrno(err, 'ENOTDIR', 'ELOOP')) throw await this.notADirectory(name, err);
      throw new HostError(`cannot open ${this.shown(name)}: ${errText(err)}`, { path: this.shown(name) }, { cause: err });
    }
  }

  /** `child`, for a directory that must exist. */
  async need(name: string): Promise<AnchoredDir> {
    const dir = await this.child(name);
    if (!dir) throw new HostError(`${this.shown(name)} does not exist`, { path: this.shown(name) });
    return dir;
  }

  /** Opens `names` one below the other (making them with `createMode`), closing the ones in between; undefined when one is absent. */
  async descend(names: readonly [string, ...string[]], createMode?: number): Promise<AnchoredDir | undefined> {
    let dir: AnchoredDir | undefined;
    for (const name of names) {
      const parent: AnchoredDir = dir ?? this;
      try {
        if (createMode !== undefined) await parent.mkdir(name, createMode);
        dir = await parent.child(name);
      } finally {
        if (parent !== this) await parent.close();
      }
      if (!dir) return undefined;
    }
    return dir;
  }

  stat(): Promise<Stats> {
    return this.handle.stat();
  }

  chown(uid: number, gid: number): Promise<void> {
    return this.handle.chown(uid, gid);
  }

  chmod(mode: number): Promise<void> {
    return this.handle.chmod(mode);
  }

  entries(): Promise<Dirent[]> {
    return readdir(`/proc/self/fd/${this.handle.fd}`, { withFileTypes: true });
  }

  /** What `name` is, without following it; undefined when absent. */
  async lstat(name: string): Promise<Stats | undefined> {
    return lstat(this.at(name)).catch((err: unknown) => (isErrno(err, 'ENOENT') ? undefined : Promise.reject(err)));
  }

  /** A small regular file's text; undefined when absent. A link or anything else there is refused. */
  async readRecord(name: string): Promise<string | undefined> {
    let file: FileHandle;
    try {
      file = await open(this.at(name), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return undefined;
      if (isErrno(err, 'ELOOP')) throw new DataSafetyError(`refusing ${this.shown(name)}: it is a symbolic link`, { path: this.shown(name) });
      throw err;
    }
    try {
      const st = await file.stat();
      if (!st.isFile() || st.size > MAX_RECORD_BYTES) throw new DataSafetyError(`refusing ${this.shown(name)}: not a small regular file`, { path: this.shown(name) });
      return await file.readFile('utf8');
    } finally {
      await file.close();
    }
  }

  /** Replaces `name` with a file holding `body`: a temp file (O_EXCL, never through a link) renamed over it. */
  async writeRecord(name: string, body: string): Promise<void> {
    const temp = `.${name}.${process.pid}.tmp`;
    await unlink(this.at(temp)).catch(() => undefined);
    const file = await open(this.at(temp), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
    try {
      await file.writeFile(body);
    } finally {
      await file.close();
    }
    await rename(this.at(temp), this.at(name));
  }

  /** Removes a file or link named `name` (never what a link points at); absent is fine. */
  async unlink(name: string): Promise<void> {
    await unlink(this.at(name)).catch((err: unknown) => (isErrno(err, 'ENOENT') ? undefined : Promise.reject(err)));
  }

  /** Renames `name` here to `toName` in `to`; a link is moved as the link. */
  async rename(name: string, to: AnchoredDir, toName: string): Promise<void> {
    await rename(this.at(name), to.at(toName));
  }

  /**
   * Deletes `name` and everything below it, descending only through directories opened with
   * O_NOFOLLOW: a link anywhere inside is unlinked, never followed. Absent is fine.
   */
  async removeTree(name: string): Promise<void> {
    try {
      await unlink(this.at(name));
      return;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return;
      if (!isErrno(err, 'EISDIR', 'EPERM')) throw err;
    }
    const dir = await this.child(name).catch(async (err: unknown) => {
      // Swapped for a link or a file between the unlink and the open: that one is unlinked now.
      if (err instanceof DataSafetyError) return void (await this.unlink(name));
      throw err;
    });
    if (!dir) return;
    try {
      for (const entry of await dir.entries()) await dir.removeTree(entry.name);
    } finally {
      await dir.close();
    }
    await rmdir(this.at(name)).catch((err: unknown) => (isErrno(err, 'ENOENT') ? undefined : Promise.reject(err)));
  }

  async close(): Promise<void> {
    await this.handle.close();
  }

  private async notADirectory(name: string, cause: unknown): Promise<DataSafetyError> {
    const st = await this.lstat(name).catch(() => undefined);
    const what = st?.isSymbolicLink() ? 'a symbolic link' : 'not a directory';
    return new DataSafetyError(`refusing ${this.shown(name)}: it is ${what}; a share's folders are never followed through links`, { path: this.shown(name) }, { cause });
  }
}

/** Runs `body` on `dir`, then closes it. */
export async function using<T>(dir: AnchoredDir, body: (dir: AnchoredDir) => Promise<T>): Promise<T> {
  try {
    return await body(dir);
  } finally {
    await dir.close();
  }
}

/** One path component: `..`, `/` or NUL would step outside the anchored directory. */
function checkName(name: string, where: string): string {
  if (name === '' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new HostError(`refusing path component ${JSON.stringify(name)} under ${where}`, { path: where });
  }
  return name;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
