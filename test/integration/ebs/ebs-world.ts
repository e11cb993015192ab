/**
 * One localcloud with emulated nodes for the relocatable-volume integration tests: each node is an
 * instance with its own device folder, mount root and EBS driver, found through its own IMDS.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DescribeInstancesCommand, DescribeVolumesCommand, RunInstancesCommand, type EC2Client, type Volume } from '@aws-sdk/client-ec2';
import { CallCounter } from '../../../aws/call-counter.js';
import { RegionalEc2 } from '../../../aws/regional-clients.js';
import { resolveNodeIdentity } from '../../../aws/identity.js';
import { delay } from '../../../core/delay.js';
import { createLogger, silentLogger } from '../../../core/log.js';
import { createEbsDriver, type EbsDriver, type EbsDriverDeps } from '../../../drivers/ebs/ebs-driver.js';
import type { Host } from '../../../host/host.js';
import { createLinuxHost } from '../../../host/linux-host.js';
import { startLocalcloud, type Localcloud, type LocalcloudOptions } from '../../../localcloud/index.js';

export const CLUSTER = 'it';
/** STOWAGE_TEST_LOG=debug shows the drivers' log lines on stderr while a test runs. */
const testLog = process.env.STOWAGE_TEST_LOG ? createLogger(process.env.STOWAGE_TEST_LOG as 'debug', process.stderr) : silentLogger;

export interface EbsNode {
  instanceId: string;
  zone: string;
  host: Host;
  driver: EbsDriver;
  mountRoot: string;
}

export interface EbsWorld {
  dir: string;
  lc: Localcloud;
  ec2: EC2Client;
  /** the EC2 client of one region of the localcloud (its first region's is `ec2`) */
  ec2In(region: string): EC2Client;
  counter: CallCounter;
  nodes: EbsNode[];
  startNode(zone: string, extra?: Partial<EbsDriverDeps>): Promise<EbsNode>;
  volumesNamed(name: string): Promise<Volume[]>;
  close(): Promise<void>;
}

export const ctx = (volume: string, ms = 30_000) => ({ deadline: Date.now() + ms, log: silentLogger.child({ volume }) });

export async function until(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const giveUp = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > giveUp) throw new Error(`timed out waiting for ${what}`);
    await delay(50);
  }
}

export async function startEbsWorld(prefix: string, options: Partial<LocalcloudOptions> = {}): Promise<EbsWorld> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `stowage-${prefix}-`));
  const lc = await startLocalcloud({ dir: path.join(dir, 'cloud'), latency: 'zero', zones: ['us-east-1a', 'us-east-1b'], ...options });
  const regional = new RegionalEc2({ endpointUrl: lc.url, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } });
  const ec2 = regional.get(lc.region);
  /** A node's region is its zone's (a localcloud with several regions serves each by its signature). */
  const ec2Of = (zone: string) => regional.get(zone.replace(/[a-z]$/, ''));
  const counter = new CallCounter();
  const nodes: EbsNode[] = [];

  /** undefined while EC2 does not show the instance yet (eventual consistency). */
  async function instanceState(id: string, zone: string): Promise<string | undefined> {
    const out = await ec2Of(zone).send(new DescribeInstancesCommand({ InstanceIds: [id] })).catch((err: { name?: string }) => {
      if (err.name === 'InvalidInstanceID.NotFound') return undefined;
      throw err;
    });
    return out?.Reservations?.[0]?.Instances?.[0]?.State?.Name;
  }

  return {
    dir, lc, ec2, counter, nodes,
    ec2In: (region) => regional.get(region),
    async startNode(zone, extra = {}) {
      const run = await ec2Of(zone).send(new RunInstancesCommand({ MinCount: 1, MaxCount: 1, ImageId: 'ami-12345678', Placement: { AvailabilityZone: zone } }));
      const instanceId = run.Instances![0]!.InstanceId!;
      await until(`${instanceId} running`, async () => (await instanceState(instanceId, zone)) === 'running');
      const identity = await resolveNodeIdentity({ imdsEndpoint: lc.imdsEndpoint(instanceId) });
      const host = createLinuxHost({ deviceDir: lc.deviceDir(instanceId) });
      const mountRoot = path.join(dir, `mnt-${nodes.length + 1}`);
      const driver = createEbsDriver({
        ec2: ec2Of(zone), host, identity, cluster: CLUSTER, mountRoot, counter, log: testLog.child({ node: nodes.length + 1 }),
        fenceAfterMs: 1500, heartbeatIntervalMs: 300, pollInitialMs: 20, stuckAttachMs: 5000, cacheTtlMs: 2000,
        retry: { minDelayMs: 20, maxDelayMs: 200, factor: 2 },
        ...extra,
      });
      driver.start();
      const node = { instanceId, zone, host, driver, mountRoot };
      nodes.push(node);
      return node;
    },
    async volumesNamed(name) {
      const out = await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'tag:stowage:volume', Values: [name] }] }));
      return out.Volumes ?? [];
    },
    // Mounts go first (a loop device cannot go while mounted), then the emulator releases its loops.
    async close() {
      for (const node of nodes) {
        node.driver.stop();
        for (const m of await node.host.mounts()) {
          if (m.target.startsWith(node.mountRoot)) await node.host.unmount(m.target, { timeoutMs: 5000, lazyAfterTimeout: true }).catch(() => undefined);
        }
      }
      regional.destroy();
      await lc.stop({ release: true });
      await rm(dir, { recursive: true, force: true });
    },
  };
}
