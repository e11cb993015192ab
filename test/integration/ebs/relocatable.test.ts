import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { CallCounter } from '../../../aws/call-counter.js';
import { createAwsClients } from '../../../aws/clients.js';
import { delay } from '../../../core/delay.js';
import { resolveNodeIdentity } from '../../../aws/identity.js';
import { createEbsDriver, type EbsDriver } from '../../../drivers/ebs/ebs-driver.js';
import type { Host } from '../../../host/host.js';
import { createLinuxHost } from '../../../host/linux-host.js';
import { startLocalcloud, type Localcloud } from '../../../localcloud/index.js';
import { PendingError, VolumeBusyError } from '../../../core/errors.js';
import { silentLogger } from '../../../core/log.js';
import { loopsUnder } from '../localcloud/helpers.js';

// Loop devices, mkfs and mount need root; elsewhere these tests are skipped, not failed.
import { asRoot } from '../../helpers/as-root.js';
import { gp3Options } from '../../helpers/volume-options.js';

const ZONE = 'us-east-1a';
const CLUSTER = 'it';
const FENCE_AFTER_MS = 1500;
const OPTIONS = gp3Options(1, { mountopts: ['noatime'] });

/** One emulated node: its instance, its own device folder and mount root, its own driver. */
interface Node {
  instanceId: string;
  host: Host;
  driver: EbsDriver;
  mountRoot: string;
}

asRoot('relocatable volumes on localcloud (real SDK, loop devices, mkfs, mount)', () => {
  let dir: string;
  let lc: Localcloud;
  let ec2: EC2Client;
  const counter = new CallCounter();
  const nodes: Node[] = [];

  const ctx = (volume: string, ms = 30_000) => ({ deadline: Date.now() + ms, log: silentLogger.child({ volume }) });

  async function instanceState(id: string): Promise<string | undefined> {
    const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    return out.Reservations?.[0]?.Instances?.[0]?.State?.Name;
  }

  async function until(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
    const giveUp = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > giveUp) throw new Error(`timed out waiting for ${what}`);
      await delay(50);
    }
  }

  async function startNode(n: number): Promise<Node> {
    const run = await ec2.send(new RunInstancesCommand({ MinCount: 1, MaxCount: 1, ImageId: 'ami-12345678', Placement: { AvailabilityZone: ZONE } }));
    const instanceId = run.Instances![0]!.InstanceId!;
    await until(`${instanceId} running`, async () => (await instanceState(instanceId)) === 'running');
    // The node learns who it is the way it would on EC2: from its IMDS.
    const identity = await resolveNodeIdentity({ imdsEndpoint: lc.imdsEndpoint(instanceId) });
    expect(identity).toEqual({ instanceId, zone: ZONE, region: 'us-east-1' });
    const host = createLinuxHost({ deviceDir: lc.deviceDir(instanceId) });
    const mountRoot = path.join(dir, `mnt-${n}`);
    const driver = createEbsDriver({
      ec2, host, identity, cluster: CLUSTER, mountRoot, counter, log: silentLogger,
      fenceAfterMs: FENCE_AFTER_MS, heartbeatIntervalMs: 300, pollInitialMs: 20, stuckAttachMs: 5000, cacheTtlMs: 2000,
    });
    driver.start();
    return { instanceId, host, driver, mountRoot };
  }

  async function volumeOf(name: string) {
    const out = await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'tag:stowage:volume', Values: [name] }] }));
    return out.Volumes![0]!;
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-ebs-it-'));
    lc = await startLocalcloud({ dir: path.join(dir, 'cloud'), latency: 'zero', zones: [ZONE, 'us-east-1b'] });
    ec2 = createAwsClients({ region: lc.region, endpointUrl: lc.url, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }).ec2;
    nodes.push(await startNode(1), await startNode(2));
  });

  // Runs whatever happened above: mounts go first (a loop device cannot go while mounted), then the emulator releases its loops.
  afterAll(async () => {
    for (const node of nodes) {
      node.driver.stop();
      for (const m of await node.host.mounts()) if (m.target.startsWith(node.mountRoot)) await node.host.unmount(m.target, { timeoutMs: 5000, lazyAfterTimeout: true }).catch(() => undefined);
    }
    ec2?.destroy();
    await lc?.stop({ release: true });
    await rm(dir, { recursive: true, force: true });
  });

  test('write through instance 1, unmount, mount on instance 2, read it back', async () => {
    const [one, two] = nodes as [Node, Node];
    await one.driver.create('moving', OPTIONS, ctx('moving'));
    const mp1 = await one.driver.mount('moving', ctx('moving'));
    await writeFile(path.join(mp1, 'hello.txt'), 'from instance 1');
    await one.driver.unmount('moving', ctx('moving'));

    const ec2Calls = () => counter.count() - counter.count('CreateTags'); // heartbeats tick on their own
    const before = ec2Calls();
    const mp2 = await two.driver.mount('moving', ctx('moving'));
    expect(ec2Calls() - before).toBeLessThanOrEqual(6);
    expect(await readFile(path.join(mp2, 'hello.txt'), 'utf8')).toBe('from instance 1');
    expect((await two.driver.get('moving', ctx('moving')))!.status).toMatchObject({ attachedTo: two.instanceId, zone: ZONE, fs: 'ext4' });
    await two.driver.unmount('moving', ctx('moving'));
    await two.driver.remove('moving', ctx('moving'));
  });

  test('reattached under another device name, the filesystem is found again, never reformatted', async () => {
    const [one] = nodes as [Node];
    await one.driver.create('kept', OPTIONS, ctx('kept'));
    const mp = await one.driver.mount('kept', ctx('kept'));
    await writeFile(path.join(mp, 'data'), 'precious');
    const firstDevice = (await volumeOf('kept')).Attachments![0]!.Device;
    await one.driver.unmount('kept', ctx('kept'));
    await one.driver.mount('kept', ctx('kept'));
    const secondDevice = (await volumeOf('kept')).Attachments![0]!.Device;
    expect(secondDevice).not.toBe(firstDevice);
    expect(await readFile(path.join(mp, 'data'), 'utf8')).toBe('precious');
    await one.driver.unmount('kept', ctx('kept'));
    await one.driver.remove('kept', ctx('kept'));
  });

  test('an attachment stuck in attaching: the Mount answers Pending naming it, the next Mount joins and ends on a new name', async () => {
    const [one] = nodes as [Node];
    await one.driver.create('stuck', OPTIONS, ctx('stuck'));
    lc.setFaults({ stuckAttach: 1 });
    const err = await one.driver.mount('stuck', ctx('stuck', 1000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PendingError);
    expect((err as Error).message).toMatch(new RegExp(`still attaching vol-[0-9a-f]+ to ${one.instanceId} as /dev/xvdb[a-z]`));
    const stuckOn = (await volumeOf('stuck')).Attachments![0]!.Device;
    const mp = await one.driver.mount('stuck', ctx('stuck'));
    const attachment = (await volumeOf('stuck')).Attachments![0]!;
    expect(attachment).toMatchObject({ State: 'attached', InstanceId: one.instanceId });
    expect(attachment.Device).not.toBe(stuckOn);
    await writeFile(path.join(mp, 'ok'), 'ok');
    await one.driver.unmount('stuck', ctx('stuck'));
    await one.driver.remove('stuck', ctx('stuck'));
  });

  test('a Mount on instance 2 while instance 1 holds the volume is refused naming the holder', async () => {
    const [one, two] = nodes as [Node, Node];
    await one.driver.create('held', OPTIONS, ctx('held'));
    await one.driver.mount('held', ctx('held'));
    const err = await two.driver.mount('held', ctx('held', 1000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VolumeBusyError);
    expect((err as Error).message).toMatch(new RegExp(`attached to instance ${one.instanceId} in ${ZONE}, which still holds it`));
    expect((await volumeOf('held')).Attachments![0]!.InstanceId).toBe(one.instanceId);
    await one.driver.unmount('held', ctx('held'));
    await one.driver.remove('held', ctx('held'));
  });

  test('instance 1 stopped, or its heartbeat stale past the fence time: instance 2 takes the volume, data intact', async () => {
    const [one, two] = nodes as [Node, Node];
    await one.driver.create('fenced', OPTIONS, ctx('fenced'));
    const mp1 = await one.driver.mount('fenced', ctx('fenced'));
    await writeFile(path.join(mp1, 'state'), 'v1');

    // Instance 1's plugin dies and its heartbeat ages. The emulated instances share one kernel, so
    // its OS letting go of the mount (as a dead node's would) is played by unmounting here.
    one.driver.stop();
    await one.host.unmount(mp1);
    await delay(FENCE_AFTER_MS + 1100);
    const mp2 = await two.driver.mount('fenced', ctx('fenced'));
    expect(await readFile(path.join(mp2, 'state'), 'utf8')).toBe('v1');
    await writeFile(path.join(mp2, 'state'), 'v2');
    await two.host.unmount(mp2);

    // Now instance 2 is stopped outright: instance 1 (alive again) fences it at once.
    one.driver.start();
    await ec2.send(new StopInstancesCommand({ InstanceIds: [two.instanceId] }));
    await until('instance 2 stopped', async () => (await instanceState(two.instanceId)) === 'stopped');
    const again = await one.driver.mount('fenced', ctx('fenced'));
    expect(await readFile(path.join(again, 'state'), 'utf8')).toBe('v2');
    await one.driver.unmount('fenced', ctx('fenced'));
    await one.driver.remove('fenced', ctx('fenced'));

    await ec2.send(new StartInstancesCommand({ InstanceIds: [two.instanceId] }));
    await until('instance 2 running', async () => (await instanceState(two.instanceId)) === 'running');
  });

  test('30% throttling and 10% server errors: every operation completes and nothing leaks', async () => {
    const [one, two] = nodes as [Node, Node];
    counter.reset();
    lc.setFaults({ throttleRate: 0.3, serverErrorRate: 0.1 });
    try {
      const names = ['f1', 'f2', 'f3'];
      await Promise.all(names.map((n) => one.driver.create(n, OPTIONS, ctx(n, 60_000))));
      for (const n of names) {
        const mp = await one.driver.mount(n, ctx(n, 60_000));
        await writeFile(path.join(mp, 'n'), n);
        await one.driver.unmount(n, ctx(n, 60_000));
      }
      await Promise.all(
        names.map(async (n) => {
          const mp = await two.driver.mount(n, ctx(n, 60_000));
          expect(await readFile(path.join(mp, 'n'), 'utf8')).toBe(n);
          await two.driver.unmount(n, ctx(n, 60_000));
          await two.driver.remove(n, ctx(n, 60_000));
        }),
      );
    } finally {
      lc.setFaults({});
    }
    expect(counter.count(undefined, 'throttled')).toBeGreaterThan(0);

    // Nothing left behind: no volumes of the cluster (once deletes complete), no attachments, no loop devices, no mounts.
    await until('volumes deleted', async () => {
      const out = await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'tag:stowage:cluster', Values: [CLUSTER] }] }));
      return (out.Volumes ?? []).length === 0;
    });
    expect(loopsUnder(lc.dir)).toEqual([]);
    for (const node of nodes) expect((await node.host.mounts()).filter((m) => m.target.startsWith(node.mountRoot))).toEqual([]);
  });
});
