import { DescribeInstancesCommand, RunInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CallCounter } from '../aws/call-counter.js';
import { createAwsClients } from '../aws/clients.js';
import { createEbsDriver, type EbsDriver, type EbsDriverDeps } from '../drivers/ebs/ebs-driver.js';
import { createLinuxHost } from '../host/linux-host.js';
import { startLocalcloud, type Localcloud, type LatencyMode } from '../localcloud/index.js';
import type { OperationContext } from '../core/context.js';
import { silentLogger } from '../core/log.js';
import { SnapshotStore } from '../snapshot/snapshot-store.js';
import { VolumeReads } from '../aws/volume-reads.js';

export const CLUSTER = 'bench';
// The SDK is pinned by the lock file; its notice about later releases is noise in a report.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const CREDENTIALS = { accessKeyId: 'bench', secretAccessKey: 'bench' };

export interface BenchCloud {
  lc: Localcloud;
  ec2: EC2Client;
  dir: string;
  close(): Promise<void>;
}

export interface BenchNode {
  instanceId: string;
  zone: string;
  driver: EbsDriver;
  counter: CallCounter;
  mountRoot: string;
}

export async function startBenchCloud(latency: LatencyMode): Promise<BenchCloud> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-bench-'));
  const lc = await startLocalcloud({ dir, latency });
  const { ec2 } = createAwsClients({ region: lc.region, endpointUrl: lc.url, credentials: CREDENTIALS });
  return {
    lc, ec2, dir,
    close: async () => {
      ec2.destroy();
      await lc.stop({ release: true });
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** One node as the plugin runs it: its instance, device folder, mount root and EBS driver (`extra` overrides its settings). */
export async function startBenchNode(cloud: BenchCloud, zone: string, pollInitialMs: number, extra: Partial<EbsDriverDeps> = {}): Promise<BenchNode> {
  const run = await cloud.ec2.send(new RunInstancesCommand({ MinCount: 1, MaxCount: 1, ImageId: 'ami-bench', Placement: { AvailabilityZone: zone } }));
  const instanceId = run.Instances![0]!.InstanceId!;
  // With realistic latencies an instance boots for several seconds, and EC2 refuses attachments until it runs.
  for (;;) {
    const described = await cloud.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
    if (described.Reservations?.[0]?.Instances?.[0]?.State?.Name === 'running') break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const counter = new CallCounter();
  const { ec2 } = createAwsClients({ region: cloud.lc.region, endpointUrl: cloud.lc.url, credentials: CREDENTIALS });
  const mountRoot = path.join(cloud.dir, 'mnt', instanceId);
  const driver = createEbsDriver({
    ec2, counter, log: silentLogger, cluster: CLUSTER, mountRoot, fenceAfterMs: 120_000, pollInitialMs,
    identity: { instanceId, zone, region: cloud.lc.region },
    host: createLinuxHost({ deviceDir: cloud.lc.deviceDir(instanceId) }),
    ...extra,
  });
  return { instanceId, zone, driver, counter, mountRoot };
}

export function benchContext(volume: string, ms = 110_000): OperationContext {
  return { deadline: Date.now() + ms, log: silentLogger.child({ volume }) };
}

/** The snapshot store and volume reads a node's driver uses, for a bench's own backups and warm-ups. */
export function benchSnapshots(cloud: BenchCloud, node: BenchNode): { store: SnapshotStore; reads: VolumeReads } {
  const deps = { ec2: cloud.ec2, counter: node.counter, cluster: CLUSTER, pollInitialMs: 500 };
  return { store: new SnapshotStore(deps), reads: new VolumeReads(deps) };
}

/** Rounded to the millisecond. */
export const mean = (values: number[]): number => Math.round(values.reduce((a, b) => a + b, 0) / values.length);
