import { UnsupportedError } from '../../core/errors.js';
import type { PerfMode } from '../../core/volume-options.js';
import type { ShareRef } from '../shared/share-driver.js';

/** The cluster's EFS file systems by performance mode (STOWAGE_EFS_ID, STOWAGE_EFS_MAXIO_ID). */
export type EfsFileSystems = Partial<Record<PerfMode, string>>;

const SETTING: Record<PerfMode, string> = { generalpurpose: 'STOWAGE_EFS_ID', maxio: 'STOWAGE_EFS_MAXIO_ID' };

/** The file system a volume with `perfmode` goes on, or an error naming the missing setting. */
export function fileSystemFor(fileSystems: EfsFileSystems, perfmode: PerfMode): string {
  const id = fileSystems[perfmode];
  if (id === undefined) {
    throw new UnsupportedError(`backing=shared with perfmode=${perfmode} needs an EFS file system: set ${SETTING[perfmode]} on every node (an fs-… id)`);
  }
  return id;
}

/** Each configured file system as a share, for the folder layout and Status. */
export function fileSystemShares(fileSystems: EfsFileSystems, efsMode: 'directory' | 'accesspoint'): ShareRef[] {
  return (Object.entries(fileSystems) as [PerfMode, string | undefined][])
    .filter((entry): entry is [PerfMode, string] => entry[1] !== undefined)
    .map(([perfmode, id]) => ({ key: id, options: { perfmode }, status: { fileSystemId: id, perfmode, efsMode } }));
}
