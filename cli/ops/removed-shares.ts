import path from 'node:path';
import { KeptFolders, removedPath } from '../../drivers/shared/volume-folders.js';

/** The data of a removed shared volume, kept aside by Remove (STOWAGE_SHARED_DELETE off). */
export interface RemovedShare {
  /** Absolute path under the mounted share. */
  path: string;
  /** `<volume>-<removal time>`, as Remove named it. */
  entry: string;
  ageDays: number;
  kept: KeptFolders;
}

/**
 * Kept data older than `olderThanDays` under a share mounted at `shareRoot` (an EFS file system
 * root or an NFS export, e.g. the plugin's `${STOWAGE_MOUNT_ROOT}/.shares/<fs-id>`). AWS cannot see
 * inside a file system, so gc reads it where it is mounted. The age is the removal time that
 * Remove wrote into the entry's name: the directory's mtime changes with anything done inside it.
 */
export async function removedShares(shareRoot: string, cluster: string, olderThanDays: number, now = Date.now()): Promise<RemovedShare[]> {
  const kept = new KeptFolders(shareRoot, cluster);
  const found: RemovedShare[] = [];
  for (const k of await kept.list()) {
    const ageDays = (now - k.removedAt.getTime()) / 86_400_000;
    if (ageDays >= olderThanDays) found.push({ path: path.join(shareRoot, removedPath(cluster), k.entry), entry: k.entry, ageDays: Math.floor(ageDays), kept });
  }
  return found;
}

export async function deleteRemovedShare(share: RemovedShare): Promise<void> {
  await share.kept.delete(share.entry);
}
