import { Tags } from '../core/schema/tags.js';
import { DescribeInstancesCommand, RunInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { CallCounter } from '../aws/call-counter.js';
import { createAwsClients } from '../aws/clients.js';
import { RegionalEc2 } from '../aws/regional-clients.js';
import { resolveNodeIdentity, type NodeIdentity } from '../aws/identity.js';
import type { Driver } from '../drivers/driver.js';
import { createEbsDriver, type EbsDriver } from '../drivers/ebs/ebs-driver.js';
import { createLinuxHost } from '../host/linux-host.js';
import { sharedDrivers } from './shared-drivers.js';
import { publishEndpoint, tokenCredentials, withdrawEndpoint } from './embedded-endpoint.js';
import { lockFolder } from './folder-lock.js';
import { startLocalcloud, type Localcloud } from '../localcloud/index.js';
import { Paths } from '../localcloud/paths.js';
import type { Config } from '../plugin/config.js';
import { DeferredDriver } from '../plugin/deferred-driver.js';
import type { Logger } from '../core/log.js';
import { noMetrics, type WorkMetrics } from '../core/metrics.js';
import type { Backing } from '../core/volume-options.js';
import { ConfigError } from '../core/errors.js';

/** What the plugin runs on: its drivers, the backings it lacks and why, and how to shut it all down. */
export interface Backend {
  drivers: Driver[];
  unavailable: Partial<Record<Backing, string>>;
  counter: CallCounter;
  close(): Promise<void>;
}

/** How long the start may spend detaching volumes a crash left attached, before serving requests. */
const RELEASE_AT_START_MS = 60_000;

/** A standalone localcloud accepts any signature; the SDK still wants credentials to sign with. */
const LOCAL_CREDENTIALS = { accessKeyId: 'localcloud', secretAccessKey: 'localcloud' };

/** The folder of the localcloud a plugin embeds; `--fresh` empties it. */
export function embeddedLocalcloudDir(config: Config): string {
  return path.join(config.stateDir, 'localcloud');
}

/** Where the plugin's AWS calls go and which instance it is, before any call is made. */
interface CloudTarget {
  endpointUrl: string | undefined;
  credentials: { accessKeyId: string; secretAccessKey: string } | undefined;
  /** Known up front for an embedded localcloud; otherwise from configuration or IMDS. */
  identity?: () => Promise<NodeIdentity>;
  deviceDir: (instanceId: string) => string;
  pollInitialMs: number;
  /** localcloud's mount-target table: EFS and NFS shares are bind-mounted from its folders. */
  mountTargetsFile?: string;
  /** An embedded localcloud makes its own EFS file system when STOWAGE_EFS_ID is unset. */
  embedded?: boolean;
}

/**
 * The one instance an embedded localcloud runs for this node, found by tag so a restart keeps the
 * same instance (and the volumes attached to it).
 */
async function embeddedInstance(ec2: EC2Client, zone: string): Promise<string> {
  const found = await ec2.send(new DescribeInstancesCommand({
    Filters: [{ Name: `tag:${Tags.embeddedNode}`, Values: ['true'] }, { Name: 'instance-state-name', Values: ['pending', 'running'] }],
  }));
  const existing = found.Reservations?.flatMap((r) => r.Instances ?? [])[0]?.InstanceId;
  if (existing) return existing;
  const run = await ec2.send(new RunInstancesCommand({
    MinCount: 1, MaxCount: 1, ImageId: 'ami-stowage', InstanceType: 't3.medium',
    Placement: { AvailabilityZone: zone },
    TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: Tags.embeddedNode, Value: 'true' }] }],
  }));
  const id = run.Instances?.[0]?.InstanceId;
  if (!id) throw new Error('embedded localcloud did not return an instance');
  return id;
}

async function cloudTarget(config: Config, log: Logger): Promise<{ target: CloudTarget; stopLocalcloud?: () => Promise<void> }> {
  if (config.backend === 'aws') {
    return { target: { endpointUrl: config.endpointUrl, credentials: undefined, deviceDir: () => config.deviceDir, pollInitialMs: 1000 } };
  }
  if (config.localcloudUrl !== undefined) {
    const paths = new Paths(config.localcloudDir!);
    return {
      target: {
        endpointUrl: config.localcloudUrl, credentials: LOCAL_CREDENTIALS, deviceDir: (id) => paths.deviceDir(id), pollInitialMs: 100,
        mountTargetsFile: paths.mountTargetsFile,
      },
    };
  }
  const dir = embeddedLocalcloudDir(config);
  // Taken before anything starts on the folder: a second emulator on it would corrupt its state.
  const lock = await lockFolder(dir, 'the localcloud embedded in stowage plugin');
  const token = randomBytes(24).toString('hex');
  const credentials = tokenCredentials(token);
  const { host, port } = config.localcloudListen;
  let localcloud: Localcloud;
  try {
    localcloud = await startLocalcloud({ dir, host, port, token, ...(config.region && { region: config.region }) });
  } catch (err) {
    await lock.release();
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    throw new ConfigError(`STOWAGE_LOCALCLOUD_LISTEN=${host}:${port} is already taken by another program: choose another address (port 0 takes any free one)`);
  }
  await publishEndpoint(config.stateDir, { url: localcloud.url, region: localcloud.region, token });
  log.info(
    { url: localcloud.url, dir: localcloud.dir, zones: localcloud.zones },
    `embedded localcloud (development emulator: volumes are sparse files on loop devices) on ${localcloud.url}; stowage commands with STOWAGE_STATE_DIR=${config.stateDir} find it`,
  );
  const zone = localcloud.zones[0]!;
  const identity = async (): Promise<NodeIdentity> => {
    const { ec2 } = createAwsClients({ region: localcloud.region, endpointUrl: localcloud.url, credentials });
    return { instanceId: await embeddedInstance(ec2, zone), zone, region: localcloud.region };
  };
  const stop = async (): Promise<void> => {
    await withdrawEndpoint(config.stateDir);
    // Attachments stay: volumes mounted by this node must survive a plugin restart.
    await localcloud.stop({ release: false });
    await lock.release();
  };
  return {
    stopLocalcloud: stop,
    target: {
      endpointUrl: localcloud.url, credentials, identity, deviceDir: (id) => localcloud.deviceDir(id), pollInitialMs: 50,
      mountTargetsFile: new Paths(localcloud.dir).mountTargetsFile, embedded: true,
    },
  };
}

/**
 * Wires the drivers for the configured backend. Only the endpoint, credentials, identity and device
 * folder differ between AWS and localcloud: the drivers run the same code on both.
 */
export async function openBackend(config: Config, log: Logger, metrics: WorkMetrics = noMetrics): Promise<Backend> {
  const { target, stopLocalcloud } = await cloudTarget(config, log);
  const counter = new CallCounter();
  let ebs: EbsDriver | undefined;
  // One identity for every driver; a failed lookup (IMDS unreachable for a moment) is tried again.
  let identityOnce: Promise<NodeIdentity> | undefined;
  const nodeIdentity = (): Promise<NodeIdentity> => {
    identityOnce ??= (target.identity ? target.identity() : resolveNodeIdentity({ instanceId: config.instanceId, az: config.az, region: config.region }))
      .catch((err: unknown) => {
        identityOnce = undefined;
        throw err;
      });
    return identityOnce;
  };
  const clients = (identity: NodeIdentity) => createAwsClients({
    region: config.region ?? identity.region,
    endpointUrl: target.endpointUrl,
    ...(target.credentials && { credentials: target.credentials }),
  });
  const shared = sharedDrivers({
    config, log, counter, identity: nodeIdentity, clients, mountTargetsFile: target.mountTargetsFile, embedded: target.embedded ?? false, pollInitialMs: target.pollInitialMs,
  });

  const drClients = new RegionalEc2({ endpointUrl: target.endpointUrl, ...(target.credentials && { credentials: target.credentials }) });
  const startEbs = async (): Promise<Driver> => {
    const identity = await nodeIdentity();
    const { ec2 } = clients(identity);
    const deviceDir = target.deviceDir(identity.instanceId);
    const driverLog = log.child({ backing: 'relocatable' });
    ebs = createEbsDriver({
      ec2, counter, log: driverLog, identity, cluster: config.cluster, mountRoot: config.mountRoot,
      host: createLinuxHost({ deviceDir, log: driverLog }),
      fenceAfterMs: config.fenceAfterMs, fenceMode: config.fenceMode, pollInitialMs: target.pollInitialMs,
      snapshotOnUnmount: config.snapshotOnUnmount, snapshotRetain: config.snapshotRetain, metrics,
      // Ticks often enough for the shortest interval a Create may ask for; every completed backup
      // of a volume with a DR region is copied there, with the DR region's key.
      backups: {
        tickMs: Math.min(30_000, config.lifecycle.backupMinIntervalMs / 2),
        drCopy: { ec2In: (region) => drClients.get(region), counter, cluster: config.cluster, sourceRegion: config.region ?? identity.region, kmsKeyId: config.drKmsKeyId },
      },
    });
    ebs.start();
    // Before any request reaches the driver, so no Mount can race the clean-up of a crash.
    await ebs.releaseUnmounted({ deadline: Date.now() + RELEASE_AT_START_MS, log: driverLog });
    driverLog.info({ instance: identity.instanceId, zone: identity.zone, region: identity.region, deviceDir }, 'relocatable driver ready');
    return ebs;
  };

  return {
    drivers: [new DeferredDriver('relocatable', config.mountRoot, startEbs), ...shared.drivers],
    unavailable: {},
    counter,
    close: async () => {
      ebs?.stop();
      drClients.destroy();
      await shared.close();
      await stopLocalcloud?.();
    },
  };
}
