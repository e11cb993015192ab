import type { ShareLocator, ShareRef } from '../shared/share-driver.js';
import { fileSystemFor, fileSystemShares, type EfsFileSystems } from './file-systems.js';
import type { MountTargets } from './mount-targets.js';

/**
 * EFS directory mode (Cloudstor's): each volume is `/stowage/<cluster>/<name>` on the cluster's
 * file system, mounted over NFS through this zone's mount target.
 */
export function efsDirectoryLocator(fileSystems: EfsFileSystems, mountTargets: MountTargets): ShareLocator {
  const shares: ShareRef[] = fileSystemShares(fileSystems, 'directory');
  return {
    backing: 'shared',
    known: () => shares,
    async forCreate(options) {
      const id = fileSystemFor(fileSystems, options.perfmode);
      return shares.find((s) => s.key === id)!;
    },
    source: (share, path, ctx) => mountTargets.source(share.key, path, ctx),
  };
}
