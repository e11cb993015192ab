import path from 'node:path';
import { VolumeFolders, volumePath } from '../../drivers/shared/volume-folders.js';
import { readMountinfo } from '../../host/mountinfo.js';
import type { ParsedArgs } from './args.js';
import type { OpsContext } from './context.js';
import { UsageError } from './exit-codes.js';

/**
 * A shared volume in directory mode: a folder on its share, with no AWS resource of its own, so
 * AWS tags cannot list it. It is read where the share is mounted.
 */
export interface ShareFolderRecord {
  name: string;
  /** Where the share's root is mounted on this machine. */
  shareRoot: string;
  /** The share as the plugin names its mount: an EFS file system id, or an NFS export's key. */
  share: string;
  path: string;
  uid: number;
  gid: number;
  mode: string;
  createdAt: string | undefined;
}

/** The flag ls and inspect take for a share mounted elsewhere (a managed plugin's propagated mount, an NFS client). */
export const SHARED_ROOT_FLAG = { 'shared-root': 'value' } as const;

/**
 * The share roots to read: `--shared-root`, else those a plugin on this machine has mounted under
 * `${STOWAGE_MOUNT_ROOT}/.shares/` (the kernel's mount table says which).
 */
async function shareRoots(ctx: OpsContext, args: ParsedArgs): Promise<string[]> {
  const given = args.flags.get('shared-root');
  if (given !== undefined) {
    if (given === true || !path.isAbsolute(given)) throw new UsageError('--shared-root takes the absolute path where the share is mounted');
    return [given];
  }
  const shares = path.join(ctx.io.env.STOWAGE_MOUNT_ROOT || '/mnt/stowage', '.shares');
  return [...new Set((await readMountinfo()).filter((m) => path.dirname(m.target) === shares).map((m) => m.target))];
}

/** The cluster's volume folders on every share root found. */
export async function shareFolders(ctx: OpsContext, args: ParsedArgs): Promise<ShareFolderRecord[]> {
  const found: ShareFolderRecord[] = [];
  for (const root of await shareRoots(ctx, args)) {
    for (const v of await new VolumeFolders(root, ctx.cluster).list()) {
      found.push({ ...v, shareRoot: root, share: path.basename(root), path: volumePath(ctx.cluster, v.name) });
    }
  }
  return found;
}
