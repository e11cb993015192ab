import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DescribeSnapshotsCommand, DescribeVolumesCommand, RunInstancesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { CallCounter } from '../../../aws/call-counter.js';
import { createAwsClients } from '../../../aws/clients.js';
import { delay } from '../../../core/delay.js';
import { createEbsDriver, type EbsDriver, type EbsDriverDeps } from '../../../drivers/ebs/ebs-driver.js';
import type { Host } from '../../../host/host.js';
import { createLinuxHost } from '../../../host/linux-host.js';
import { startLocalcloud, type Localcloud } from '../../../localcloud/index.js';
import { PendingError } from '../../../core/errors.js';
import { silentLogger } from '../../../core/log.js';
import type { MoveStep } from '../../../snapshot/zone-move.js';
import { loopsUnder } from '../localcloud/helpers.js';

// Loop devices, mkfs and mount need root; elsewhere these tests are skipped, not failed.
import { asRoot } from '../../helpers/as-root.js';
import { gp3Options } from '../../helpers/volume-options.js';

const ZONES = ['us-east-1a', 'us-east-1b', 'us-east-1c'];
const CLUSTER = 'xz';
const OPTIONS = gp3Options(1);
const STEPS: MoveStep[] = ['snapshot-started', 'snapshot-completed', 'copy-created', 'copy-available', 'source-retired'];

interface Node {
  instanceId: string;
  zone: string;
  host: Host;
  mountRoot: string;
  counter: CallCounter;
  driver: EbsDriver;
}

asRoot('cross-zone moves on localcloud (real SDK, loop devices, mkfs, mount)', () => {
  let dir: string;
  let lc: Localcloud;
  let ec2: EC2Client;
  const instances = new Map<string, string>();
  const drivers: Node[] = [];

  const ctx = (volume: string, ms = 30_000) => ({ deadline: Date.now() + ms, log: silentLogger.child({ volume }) });

  /** A fresh plugin (driver) on the zone's instance, as after a restart: nothing in memory. */
  function node(zone: string, extra: Partial<EbsDriverDeps> = {}): Node {
    const instanceId = instances.get(zone)!;
    const host = createLinuxHost({ deviceDir: lc.deviceDir(instanceId) });
    const mountRoot = path.join(dir, `mnt-${zone}`);
    const counter = new CallCounter();
    const driver = createEbsDriver({
      ec2, host, counter, log: silentLogger, identity: { instanceId, zone, region: 'us-east-1' }, cluster: CLUSTER, mountRoot,
      fenceAfterMs: 60_000, pollInitialMs: 20, cacheTtlMs: 0, ...extra,
    });
    const n = { instanceId, zone, host, mountRoot, counter, driver };
    drivers.push(n);
    return n;
  }

  async function volumesNamed(name: string) {
    const out = await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'tag:stowage:volume', Values: [name] }] }));
    return (out.Volumes ?? []).filter((v) => v.State !== 'deleting' && v.State !== 'deleted');
  }

  async function snapshotsNamed(name: string) {
    const out = await ec2.send(new DescribeSnapshotsCommand({ Filters: [{ Name: 'tag:stowage:volume', Values: [name] }] }));
    return out.Snapshots ?? [];
  }

  /** Creates the volume in zone a, writes a few MiB of random data, unmounts; returns the checksum. */
  async function seeded(name: string, zone = ZONES[0]!, extra: Partial<EbsDriverDeps> = {}): Promise<string> {
    const a = node(zone, extra);
    await a.driver.create(name, OPTIONS, ctx(name));
    const mp = await a.driver.mount(name, ctx(name));
    const data = randomBytes(4 * 1024 * 1024);
    await writeFile(path.join(mp, 'data.bin'), data);
    await a.driver.unmount(name, ctx(name));
    return createHash('sha256').update(data).digest('hex');
  }

  async function checksumVia(n: Node, name: string, ms = 30_000): Promise<string> {
    const mp = await n.driver.mount(name, ctx(name, ms));
    return createHash('sha256').update(await readFile(path.join(mp, 'data.bin'))).digest('hex');
  }

  /** Exactly one volume carries the name, in `zone`, attached to at most `instance`; no orphan copies. */
  async function expectOneVolume(name: string, zone: string, instance?: string): Promise<void> {
    const vols = await volumesNamed(name);
    expect(vols.map((v) => `${v.AvailabilityZone}`)).toEqual([zone]);
    const attachedTo = (vols[0]!.Attachments ?? []).filter((a) => a.State !== 'detached').map((a) => a.InstanceId);
    expect(attachedTo).toEqual(instance ? [instance] : []);
  }

  async function release(n: Node, name: string): Promise<void> {
    await n.driver.unmount(name, ctx(name));
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-xz-it-'));
    lc = await startLocalcloud({ dir: path.join(dir, 'cloud'), latency: 'zero', zones: ZONES });
    ec2 = createAwsClients({ region: lc.region, endpointUrl: lc.url, credentials: { accessKeyId: 'x', secretAccessKey: 'x' } }).ec2;
    for (const zone of ZONES) {
      const run = await ec2.send(new RunInstancesCommand({ MinCount: 1, MaxCount: 1, ImageId: 'ami-12345678', Placement: { AvailabilityZone: zone } }));
      instances.set(zone, run.Instances![0]!.InstanceId!);
    }
    await delay(200); // instances boot (zero latency: next call sees them running)
  });

  afterAll(async () => {
    for (const n of drivers) {
      n.driver.stop();
      for (const m of await n.host.mounts()) if (m.target.startsWith(n.mountRoot)) await n.host.unmount(m.target, { timeoutMs: 5000, lazyAfterTimeout: true }).catch(() => undefined);
    }
    await lc?.setFaults({});
    ec2?.destroy();
    await lc?.stop({ release: true });
    expect(loopsUnder(dir)).toEqual([]);
    await rm(dir, { recursive: true, force: true });
  });

  test('data written in zone a is read back byte for byte in zone b; the old volume is gone, one snapshot kept', async () => {
    const sum = await seeded('moves');
    const b = node(ZONES[1]!);
    expect(await checksumVia(b, 'moves')).toBe(sum);
    await expectOneVolume('moves', ZONES[1]!, b.instanceId);
    expect(b.counter.count('CreateSnapshot')).toBe(1);
    expect(await snapshotsNamed('moves')).toHaveLength(1);
    expect((await b.driver.get('moves', ctx('moves')))!.status).toMatchObject({ zone: ZONES[1], generation: 2 });
    await release(b, 'moves');
  });

  test('warm (snapshot on unmount): a cross-zone Mount the moment the Unmount answered makes no CreateSnapshot', async () => {
    const sum = await seeded('warm', ZONES[0]!, { snapshotOnUnmount: true });
    // No waiting for the record: the Unmount answers once its snapshot is recorded on the volume.
    const b = node(ZONES[1]!);
    expect(await checksumVia(b, 'warm')).toBe(sum);
    expect(b.counter.count('CreateSnapshot')).toBe(0);
    expect(b.counter.count('DescribeSnapshots')).toBeLessThanOrEqual(3); // find it, see it completed, retention
    await expectOneVolume('warm', ZONES[1]!, b.instanceId);
    await release(b, 'warm');
  });

  test('slower than the Mount deadline: the progress answer comes within it, a later Mount succeeds, data intact', async () => {
    const sum = await seeded('slow');
    await lc.setFaults({ slowSnapshotMs: 3000 });
    const b = node(ZONES[1]!);
    const first = await b.driver.mount('slow', ctx('slow', 1000)).catch((e: unknown) => e);
    await lc.setFaults({});
    expect(first).toBeInstanceOf(PendingError);
    expect((first as Error).message).toMatch(/^volume slow is moving us-east-1a → us-east-1b: snapshot \d+%/);
    expect((await b.driver.get('slow', ctx('slow')))!.status.moving).toBe('us-east-1a → us-east-1b');
    expect(await checksumVia(b, 'slow')).toBe(sum);
    expect(b.counter.count('CreateSnapshot')).toBe(1);
    await expectOneVolume('slow', ZONES[1]!, b.instanceId);
    await release(b, 'slow');
  });

  test.each(STEPS)('a mover that dies after %s: a fresh plugin completes the move, one volume, nothing orphaned', async (crashAt) => {
    const name = `crash-${crashAt}`;
    const sum = await seeded(name);
    let abandoned = false;
    const dying = node(ZONES[1]!, {
      afterMoveStep: (step) => {
        if (step !== crashAt) return;
        abandoned = true;
        return new Promise<void>(() => {}); // never returns: the process is gone
      },
    });
    const first = await dying.driver.mount(name, ctx(name, 1500)).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(PendingError);
    expect(abandoned).toBe(true);
    dying.driver.stop();
    const restarted = node(ZONES[1]!);
    expect(await checksumVia(restarted, name)).toBe(sum);
    await expectOneVolume(name, ZONES[1]!, restarted.instanceId);
    // at most the snapshot retention keeps (plus none abandoned)
    expect(await snapshotsNamed(name)).toHaveLength(1);
    await release(restarted, name);
  });

  test('two movers to two zones at once: exactly one volume survives, holding the data', async () => {
    const sum = await seeded('race');
    const b = node(ZONES[1]!);
    const c = node(ZONES[2]!);
    const results = await Promise.allSettled([b.driver.mount('race', ctx('race', 20_000)), c.driver.mount('race', ctx('race', 20_000))]);
    const winners = [b, c].filter((_, i) => results[i]!.status === 'fulfilled');
    expect(winners).toHaveLength(1);
    const winner = winners[0]!;
    await expectOneVolume('race', winner.zone, winner.instanceId);
    const mp = winner.driver.mountpointOf('race');
    expect(createHash('sha256').update(await readFile(path.join(mp, 'data.bin'))).digest('hex')).toBe(sum);
    await release(winner, 'race');
  });
});
