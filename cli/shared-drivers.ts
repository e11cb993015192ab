import type { AwsClients } from '../aws/clients.js';
import type { CallCounter } from '../aws/call-counter.js';
import type { NodeIdentity } from '../aws/identity.js';
import type { Driver } from '../drivers/driver.js';
import { createEfsDriver } from '../drivers/efs/efs-driver.js';
import type { EfsFileSystems } from '../drivers/efs/file-systems.js';
import { createNfsDriver } from '../drivers/nfs/nfs-driver.js';
import { createNfsMounter, type Mounter } from '../drivers/shared/mounter.js';
import type { SharedDriver } from '../drivers/shared/share-driver.js';
import type { Host } from '../host/host.js';
import { createLinuxHost } from '../host/linux-host.js';
import type { Config } from '../plugin/config.js';
import { DeferredDriver } from '../plugin/deferred-driver.js';
import type { Logger } from '../core/log.js';
import { embeddedFileSystem } from './embedded-efs.js';
import { createLocalcloudMounter } from './localcloud-mounter.js';

export interface SharedWiring {
  config: Config;
  log: Logger;
  counter: CallCounter;
  identity: () => Promise<NodeIdentity>;
  clients: (identity: NodeIdentity) => AwsClients;
  /** localcloud's mount-target table: shares are bind-mounted from its folders. Absent on AWS. */
  mountTargetsFile: string | undefined;
  /** An embedded localcloud makes its own file system when STOWAGE_EFS_ID is unset. */
  embedded: boolean;
  pollInitialMs: number;
}

/** `backing=shared` (EFS) and `backing=nfs`, started on their first request like the EBS driver. */
export function sharedDrivers(w: SharedWiring): { drivers: Driver[]; close(): Promise<void> } {
  const { config } = w;
  const started: SharedDriver[] = [];
  const hostAndMounter = (log: Logger): { host: Host; mounter: Mounter } => {
    const host = createLinuxHost({ deviceDir: config.deviceDir, log });
    return { host, mounter: w.mountTargetsFile ? createLocalcloudMounter(host, w.mountTargetsFile) : createNfsMounter(host) };
  };
  const keep = (driver: SharedDriver): SharedDriver => (started.push(driver), driver);

  const startEfs = async (): Promise<Driver> => {
    const log = w.log.child({ backing: 'shared' });
    const identity = await w.identity();
    const { efs, ec2 } = w.clients(identity);
    const fileSystems: EfsFileSystems = {
      ...(config.efsId !== undefined && { generalpurpose: config.efsId }),
      ...(config.efsMaxioId !== undefined && { maxio: config.efsMaxioId }),
    };
    if (w.embedded && fileSystems.generalpurpose === undefined) fileSystems.generalpurpose = await embeddedFileSystem(efs, ec2, config.cluster);
    const driver = createEfsDriver({
      efs, counter: w.counter, ...hostAndMounter(log), zone: identity.zone, cluster: config.cluster, mountRoot: config.mountRoot,
      fileSystems, mode: config.efsMode, sharedDelete: config.sharedDelete, pollInitialMs: w.pollInitialMs,
      // Holder records are per plugin process: two on one host (localcloud tests) must not share the host name.
      node: identity.instanceId, log,
    });
    log.info({ zone: identity.zone, fileSystems, efsMode: config.efsMode, sharedDelete: config.sharedDelete }, 'shared (EFS) driver ready');
    return keep(driver);
  };

  const startNfs = async (): Promise<Driver> => {
    const log = w.log.child({ backing: 'nfs' });
    const { instanceId } = await w.identity();
    return keep(await createNfsDriver({
      ...hostAndMounter(log), cluster: config.cluster, mountRoot: config.mountRoot, stateDir: config.stateDir, sharedDelete: config.sharedDelete, log,
      node: instanceId,
    }));
  };

  return {
    drivers: [new DeferredDriver('shared', config.mountRoot, startEfs), new DeferredDriver('nfs', config.mountRoot, startNfs)],
    close: async () => {
      for (const driver of started) await driver.close(w.log);
    },
  };
}
