import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { removedPath } from '../../drivers/shared/volume-folders.js';

/** The data of a removed shared volume, kept aside by Remove (STOWAGE_SHARED_DELETE off). */
export interface RemovedShare {
  /** Absolute path under the mounted share. */
  path: string;
  /** `<volume>-<removal time>`, as Remove named it. */
  entry: string;
  ageDays: number;
}

/**
 * Kept data older than `olderThanDays` under a share mounted at `shareRoot` (an EFS file system
 * root or an NFS export, e.g. the plugin's `${STOWAGE_MOUNT_ROOT}/.shares/<fs-id>`). AWS cannot see
 * inside a file system, so gc reads it where it is mounted.
 */
export async function removedShares(shareRoot: string, cluster: string, olderThanDays: number, now = Date.now()): Promise<RemovedShare[]> {
  const dir = path.join(shareRoot, removedPath(cluster));
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const found: RemovedShare[] = [];
  for (const entry of entries.sort()) {
    const full = path.join(dir, entry);
    const ageDays = (now - (await stat(full)).mtimeMs) / 86_400_000;
    if (ageDays >= olderThanDays) found.push({ path: full, entry, ageDays: Math.floor(ageDays) });
  }
  return found;
}

export async function deleteRemovedShare(share: RemovedShare): Promise<void> {
  await rm(share.path, { recursive: true, force: true });
}
