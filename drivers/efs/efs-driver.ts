import type { EFSClient } from '@aws-sdk/client-efs';
import type { CallCounter } from '../../aws/call-counter.js';
import type { Host } from '../../host/host.js';
import { silentLogger, type Logger } from '../../core/log.js';
import type { Mounter } from '../shared/mounter.js';
import { ShareDriver, resumeHolders, type SharedDriver } from '../shared/share-driver.js';
import { ShareRoots } from '../shared/share-roots.js';
import { Holders, type HolderTiming } from '../shared/volume-holders.js';
import { AccessPointDriver } from './access-point-driver.js';
import { AccessPoints } from './access-points.js';
import { efsDirectoryLocator } from './directory-locator.js';
import type { EfsFileSystems } from './file-systems.js';
import { MountTargets } from './mount-targets.js';

export interface EfsDriverDeps {
  efs: EFSClient;
  counter: CallCounter;
  host: Host;
  /** NFS on AWS; a bind mount of the mount target's folder on localcloud. */
  mounter: Mounter;
  /** This node's zone: mounts go through the mount target there. */
  zone: string;
  cluster: string;
  mountRoot: string;
  fileSystems: EfsFileSystems;
  /** STOWAGE_EFS_MODE */
  mode: 'directory' | 'accesspoint';
  sharedDelete: boolean;
  /** This node's name in the holder records on the shares: its instance id (default: the host name). */
  node?: string;
  holderTiming?: HolderTiming;
  /** For what the driver does in the background (resuming heartbeats after a restart). */
  log?: Logger;
  pollInitialMs?: number;
  cacheTtlMs?: number;
  now?: () => number;
}

/** `backing=shared` on EFS, in the configured mode. */
export function createEfsDriver(deps: EfsDriverDeps): SharedDriver {
  const mountTargets = new MountTargets({ efs: deps.efs, counter: deps.counter, zone: deps.zone, ...(deps.pollInitialMs !== undefined && { pollInitialMs: deps.pollInitialMs }) });
  const roots = new ShareRoots({ mounter: deps.mounter, host: deps.host, mountRoot: deps.mountRoot });
  const holders = new Holders({ ...(deps.node !== undefined && { node: deps.node }), ...(deps.holderTiming && { timing: deps.holderTiming }) });
  const common = { host: deps.host, mounter: deps.mounter, roots, holders, cluster: deps.cluster, mountRoot: deps.mountRoot, sharedDelete: deps.sharedDelete };
  const driver: AccessPointDriver | ShareDriver =
    deps.mode === 'accesspoint'
      ? new AccessPointDriver({
          ...common,
          mountTargets,
          fileSystems: deps.fileSystems,
          accessPoints: new AccessPoints({ efs: deps.efs, counter: deps.counter, cluster: deps.cluster, ttlMs: deps.cacheTtlMs ?? 5000, now: deps.now ?? Date.now }),
          ...(deps.pollInitialMs !== undefined && { pollInitialMs: deps.pollInitialMs }),
        })
      : new ShareDriver({
          ...common,
          locator: efsDirectoryLocator(deps.fileSystems, mountTargets),
          ...(deps.cacheTtlMs !== undefined && { cacheTtlMs: deps.cacheTtlMs }),
          ...(deps.now && { now: deps.now }),
        });
  resumeHolders(driver, deps.log ?? silentLogger);
  return Object.assign(driver, { close: async (log: Logger) => (await holders.stop(), roots.close(log)) });
}
