/**
 * The fault matrix's test bed: one localcloud (zones a and b) on a fixed port, so it can be
 * restarted under running drivers; emulated instances with their own device folder and mount root;
 * a caller that behaves like dockerd + Swarm (retries what is retryable, records every error it
 * saw); and the orphan census each cell ends with.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  DeleteSnapshotCommand,
  DeleteVolumeCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  DetachVolumeCommand,
  DescribeVolumesCommand,
  RunInstancesCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { CallCounter } from '../../aws/call-counter.js';
import { createAwsClients } from '../../aws/clients.js';
import { delay } from '../../core/delay.js';
import type { OperationContext } from '../../core/context.js';
import { createEbsDriver, type EbsDriver } from '../../drivers/ebs/ebs-driver.js';
import type { Host } from '../../host/host.js';
import type { NodeIdentity } from '../../aws/identity.js';
import { createLinuxHost } from '../../host/linux-host.js';
import { readMountinfo } from '../../host/mountinfo.js';
import { DEFAULT_MAX_LAG_MS, startLocalcloud, type FaultSpec, type Localcloud, type LocalcloudOptions } from '../../localcloud/index.js';
import { StowageError } from '../../core/errors.js';
import { createLogger, silentLogger } from '../../core/log.js';
import { parseOptions } from '../../plugin/options/parse.js';
import { type VolumeOptions } from '../../core/volume-options.js';
import { isUnder } from '../fuzz/protocol-check.js';
import { loopsUnder } from '../integration/localcloud/helpers.js';

export const CLUSTER = 'faults';
export const ZONE_A = 'us-east-1a';
export const ZONE_B = 'us-east-1b';
export const OPTIONS: VolumeOptions = parseOptions({ backing: 'relocatable', size: '1' }, 'relocatable').options;
export const CREDENTIALS = { accessKeyId: 'faults', secretAccessKey: 'faults' };
/** Short enough that a cell sees fencing and stuck attachments within seconds. */
export const FENCE_AFTER_MS = 1500;
export const STUCK_ATTACH_MS = 1500;
/** STOWAGE_TEST_LOG=debug shows the drivers' and callers' log lines on stderr while a cell runs. */
const testLog = process.env.STOWAGE_TEST_LOG ? createLogger(process.env.STOWAGE_TEST_LOG as 'debug', process.stderr) : silentLogger;

export interface FaultNode {
  label: string;
  instanceId: string;
  zone: string;
  host: Host;
  driver: EbsDriver;
  mountRoot: string;
}

export interface FaultBed {
  dir: string;
  lc: Localcloud;
  ec2: EC2Client;
  /** Every EC2 request the drivers sent, by outcome. */
  counter: CallCounter;
  faults(spec: FaultSpec): void;
  /** Stops the emulator (keeping its loop devices and state) and starts it again on the same port. */
  restartCloud(pauseMs: number): Promise<void>;
  startInstance(zone: string): Promise<string>;
  node(label: string, zone: string, instanceId?: string): Promise<FaultNode>;
  /** Ends the faults and reports what the cluster and this machine still hold of the bed's volumes; all empty after a clean cycle. */
  orphans(): Promise<Orphans>;
  /** Unmounts, force-detaches and deletes whatever a failed cell left, so the next cell starts clean. */
  sweep(): Promise<void>;
  close(): Promise<void>;
}

export interface Orphans {
  volumes: string[];
  snapshots: string[];
  attachments: string[];
  loopDevices: string[];
  mounts: string[];
}

export async function until(what: string, check: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const giveUp = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > giveUp) throw new Error(`timed out waiting for ${what}`);
    await delay(100);
  }
}

/** The driver of one emulated node, tuned so a cell sees fencing, stuck attachments and retries within seconds. */
export function bedDriver(ec2: EC2Client, host: Host, counter: CallCounter, identity: NodeIdentity, mountRoot: string): EbsDriver {
  return createEbsDriver({
    ec2, host, counter, log: testLog.child({ node: identity.instanceId }), cluster: CLUSTER, mountRoot, identity,
    fenceAfterMs: FENCE_AFTER_MS, heartbeatIntervalMs: 300, pollInitialMs: 20, stuckAttachMs: STUCK_ATTACH_MS, cacheTtlMs: 500,
    snapshotOnUnmount: true, retry: { minDelayMs: 20, maxDelayMs: 500, factor: 2 },
  });
}

/** `cloud` adds emulator settings (consistency, latency) that hold across restartCloud too. */
export async function startFaultBed(label: string, cloud: Omit<LocalcloudOptions, 'dir' | 'zones' | 'port'> = {}): Promise<FaultBed> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `stowage-faults-${label}-`));
  const cloudDir = path.join(dir, 'cloud');
  const counter = new CallCounter();
  const nodes: FaultNode[] = [];
  let lc = await startLocalcloud({ ...cloud, dir: cloudDir, zones: [ZONE_A, ZONE_B] });
  // How far back a Describe may look: a reading taken this long after the last change shows it.
  const lagMs = cloud.consistency?.mode === 'eventual' ? (cloud.consistency.maxLagMs ?? DEFAULT_MAX_LAG_MS) : 0;
  const pastLag = () => delay(lagMs + 50);
  const port = Number(new URL(lc.url).port);
  const { ec2 } = createAwsClients({ region: lc.region, endpointUrl: lc.url, credentials: CREDENTIALS });

  const census = async (): Promise<Orphans> => {
    const filter = [{ Name: 'tag:stowage:cluster', Values: [CLUSTER] }];
    const volumes = (await ec2.send(new DescribeVolumesCommand({ Filters: filter }))).Volumes ?? [];
    const snapshots = (await ec2.send(new DescribeSnapshotsCommand({ Filters: filter }))).Snapshots ?? [];
    return {
      volumes: volumes.map((v) => `${v.VolumeId} ${v.State} ${v.AvailabilityZone}`),
      snapshots: snapshots.map((s) => `${s.SnapshotId} ${s.State} ${s.Tags?.find((t) => t.Key === 'stowage:snapshot-reason')?.Value ?? ''}`),
      attachments: volumes.flatMap((v) => (v.Attachments ?? []).map((a) => `${v.VolumeId} ${a.InstanceId} ${a.State}`)),
      loopDevices: loopsUnder(lc.dir),
      mounts: (await readMountinfo()).filter((m) => isUnder(m.target, dir)).map((m) => m.target),
    };
  };
  const unmountAll = async () => {
    for (const m of (await readMountinfo()).filter((m) => isUnder(m.target, dir)).reverse()) {
      await createLinuxHost({ deviceDir: dir }).unmount(m.target, { timeoutMs: 5000, lazyAfterTimeout: true }).catch(() => undefined);
    }
  };
  const empty = (o: Orphans) => Object.values(o).every((list) => list.length === 0);

  const bed: FaultBed = {
    dir,
    get lc() {
      return lc;
    },
    ec2,
    counter,
    faults: (spec) => lc.setFaults(spec),
    restartCloud: async (pauseMs) => {
      await lc.stop({ release: false });
      await delay(pauseMs);
      lc = await startLocalcloud({ ...cloud, dir: cloudDir, zones: [ZONE_A, ZONE_B], port });
    },
    startInstance: async (zone) => {
      const run = await ec2.send(new RunInstancesCommand({ MinCount: 1, MaxCount: 1, ImageId: 'ami-faults', Placement: { AvailabilityZone: zone } }));
      const id = run.Instances![0]!.InstanceId!;
      await until(`${id} running`, async () => {
        // An eventually consistent cloud may not show the new instance yet.
        const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] })).catch((err: Error) => {
          if (err.name === 'InvalidInstanceID.NotFound') return undefined;
          throw err;
        });
        return out?.Reservations?.[0]?.Instances?.[0]?.State?.Name === 'running';
      });
      return id;
    },
    node: async (nodeLabel, zone, known) => {
      const instanceId = known ?? (await bed.startInstance(zone));
      const host = createLinuxHost({ deviceDir: lc.deviceDir(instanceId) });
      const mountRoot = path.join(dir, `mnt-${nodeLabel}`);
      const driver = bedDriver(ec2, host, counter, { instanceId, zone, region: lc.region }, mountRoot);
      driver.start();
      const node = { label: nodeLabel, instanceId, zone, host, driver, mountRoot };
      nodes.push(node);
      return node;
    },
    // Deletes and detaches settle on the emulator's tick, and an unmount's snapshot runs in the background.
    orphans: async () => {
      // The census is the bed's own reading, after the cell: no injected fault may skew it.
      lc.setFaults({});
      let last = await census();
      // An empty reading counts once a second one, taken past the lag, agrees: a lagging Describe
      // misses what was made in the last maxLagMs.
      await until('no orphans', async () => empty((last = await census())) && (await pastLag(), empty((last = await census()))), 10_000).catch(() => undefined);
      return last;
    },
    // Each listing is read past the lag: a cell that failed a moment after its Create leaves a
    // volume a lagging Describe does not show yet, and the next cell's census would count it.
    sweep: async () => {
      await unmountAll();
      const filter = [{ Name: 'tag:stowage:cluster', Values: [CLUSTER] }];
      const listVolumes = async () => ((await ec2.send(new DescribeVolumesCommand({ Filters: filter }))).Volumes ?? []).filter((v) => v.State !== 'deleting' && v.State !== 'deleted');
      for (let round = 0; round < 3; round++) {
        await pastLag();
        const volumes = await listVolumes();
        const snapshots = (await ec2.send(new DescribeSnapshotsCommand({ Filters: filter }))).Snapshots ?? [];
        if (volumes.length === 0 && snapshots.length === 0) return;
        for (const v of volumes.filter((v) => v.Attachments?.length)) {
          await ec2.send(new DetachVolumeCommand({ VolumeId: v.VolumeId, Force: true })).catch(() => undefined);
        }
        await until('left-overs detached', async () => (await listVolumes()).every((v) => !v.Attachments?.length)).catch(() => undefined);
        for (const v of volumes) await ec2.send(new DeleteVolumeCommand({ VolumeId: v.VolumeId })).catch(() => undefined);
        for (const s of snapshots) await ec2.send(new DeleteSnapshotCommand({ SnapshotId: s.SnapshotId })).catch(() => undefined);
      }
    },
    close: async () => {
      for (const node of nodes) node.driver.stop();
      try {
        await unmountAll();
      } finally {
        ec2.destroy();
        await lc.stop({ release: true });
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
  return bed;
}

/** Every error a caller saw in a cell: each must be a StowageError with a message an operator can act on. */
export class Caller {
  readonly seen: StowageError[] = [];

  /**
   * Calls `op` as dockerd and Swarm would: a retryable error is met with another call (Swarm
   * restarts the task); anything else ends the cell. `answerMs` is the deadline each call gets.
   */
  async call<T>(what: string, volume: string, op: (ctx: OperationContext) => Promise<T>, answerMs = 20_000, attempts = 30): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await op({ deadline: Date.now() + answerMs, log: testLog.child({ volume, call: what }) });
      } catch (err) {
        if (!(err instanceof StowageError)) throw new Error(`${what}: not a StowageError, so no clear message: ${String(err)}`, { cause: err });
        this.seen.push(err);
        testLog.warn({ volume, call: what, attempt, kind: err.kind, retryable: err.retryable, err: err.message }, 'the caller saw an error');
        if (!err.retryable || attempt >= attempts) throw err;
        await delay(200);
      }
    }
  }

  kinds(): string[] {
    return [...new Set(this.seen.map((e) => e.kind))].sort();
  }
}

/** Random bytes written through one node, to read back through another. */
export async function writeData(mountpoint: string, bytes = 256 * 1024): Promise<Buffer> {
  const data = randomBytes(bytes);
  await writeFile(path.join(mountpoint, 'data.bin'), data);
  return data;
}

export async function readData(mountpoint: string): Promise<Buffer> {
  return readFile(path.join(mountpoint, 'data.bin'));
}

