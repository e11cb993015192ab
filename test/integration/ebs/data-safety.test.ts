/**
 * Issue 15's ways to lose data, each reproduced on real loop devices, mkfs and mount, through the
 * real SDK against localcloud. Every test here failed on the code before its fix.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CreateTagsCommand } from '@aws-sdk/client-ec2';
import { delay } from '../../../core/delay.js';
import { StowageError } from '../../../core/errors.js';
import { silentLogger } from '../../../core/log.js';
import { parseOptions } from '../../../plugin/options/parse.js';
import { RefcountStore } from '../../../plugin/refcounts.js';
import { VolumeService } from '../../../plugin/volume-service.js';
import { readMountinfo } from '../../../host/mountinfo.js';
import { asRoot } from '../../helpers/as-root.js';
import { ctx, startEbsWorld, until, type EbsNode, type EbsWorld } from './ebs-world.js';

const OPTIONS = parseOptions({ backing: 'relocatable', size: '1' }, 'relocatable').options;

async function retrying<T>(work: () => Promise<T>, attempts = 10): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await work();
    } catch (err) {
      if (!(err instanceof StowageError) || !err.retryable || i >= attempts) throw err;
      await delay(1000);
    }
  }
}

/** The device the kernel shows mounted at `target`, or undefined: the only proof a Mount's answer is the volume. */
async function mountedSource(target: string): Promise<string | undefined> {
  return (await readMountinfo()).find((m) => m.target === target)?.source;
}

asRoot('never lose data (issue 15)', () => {
  let world: EbsWorld;

  /** The node in us-east-1a every test here uses. */
  const nodeA = async () => world.nodes[0] ?? world.startNode('us-east-1a');

  /** The protocol's VolumeService over one node's driver, with its own reference counts. */
  async function serviceOn(node: EbsNode, state: string, requestTimeoutMs: number) {
    const stateDir = path.join(world.dir, state);
    await mkdir(stateDir, { recursive: true });
    const refcounts = new RefcountStore(stateDir, silentLogger);
    await refcounts.load(async () => false);
    const service = new VolumeService({ drivers: [node.driver], refcounts, log: silentLogger, defaultBacking: 'relocatable', mountTimeoutMs: 5000, requestTimeoutMs });
    return { service, refcounts };
  }

  beforeAll(async () => {
    world = await startEbsWorld('data-safety');
  });
  afterEach(() => world.lc.setFaults({}));
  afterAll(async () => {
    await world?.close();
  });

  test('1: an Unmount whose detach EC2 keeps throttling lets the reference go; the next Mount answers the mounted volume, never an empty folder', async () => {
    const node = await nodeA();
    const { service, refcounts } = await serviceOn(node, 'state-1', 2000);
    await service.create('throttled', { backing: 'relocatable', size: '1' });
    const first = await service.mount('throttled', 'id-1');
    await writeFile(path.join(first, 'db'), 'committed');

    world.lc.setFaults({ throttleRate: { DetachVolume: 1 } });
    // The umount itself succeeded; the detach goes on in the background, so the reference goes.
    await service.unmount('throttled', 'id-1');
    expect(refcounts.count('throttled')).toBe(0);
    expect(await mountedSource(first)).toBeUndefined();

    const again = await service.mount('throttled', 'id-2');
    const device = await node.host.findDevice((await world.volumesNamed('throttled'))[0]!.VolumeId!);
    expect(device).toBeDefined();
    expect(await mountedSource(again)).toBe(device);
    expect(await readFile(path.join(again, 'db'), 'utf8')).toBe('committed');

    world.lc.setFaults({});
    await service.unmount('throttled', 'id-2');
    await until('detached', async () => ((await world.volumesNamed('throttled'))[0]!.Attachments ?? []).every((a) => a.State === 'detached'), 15_000);
    await node.driver.remove('throttled', ctx('throttled'));
    service.close();
  });

  test('7: any number of remove/create cycles of one name, with any options, work (EC2 remembers every ClientToken)', async () => {
    const node = await nodeA();
    const sizes = ['1', '2', '1', '3', '1', '2', '1', '1'];
    for (const [i, size] of sizes.entries()) {
      const options = parseOptions({ backing: 'relocatable', size }, 'relocatable').options;
      await node.driver.create('cycled', options, ctx('cycled'));
      const live = (await world.volumesNamed('cycled')).filter((v) => v.State !== 'deleted' && v.State !== 'deleting');
      expect([i, live.map((v) => v.Size)]).toEqual([i, [Number(size)]]);
      await node.driver.remove('cycled', ctx('cycled'));
    }
  });

  test('2: a "snapshot holds the current data" tag that lands after the next attach never rolls a cross-zone move back', async () => {
    const a1 = await world.startNode('us-east-1a', { snapshotOnUnmount: true });
    const a2 = await world.startNode('us-east-1a');
    const b = await world.startNode('us-east-1b');
    await a1.driver.create('rollback', OPTIONS, ctx('rollback'));
    await writeFile(path.join(await a1.driver.mount('rollback', ctx('rollback')), 'db'), 'v1');
    await a1.driver.unmount('rollback', ctx('rollback'));
    const tagOf = async () => (await world.volumesNamed('rollback'))[0]!.Tags?.find((t) => t.Key === 'stowage:snapshot-current')?.Value;
    await until('snapshot on unmount recorded', async () => (await tagOf()) !== undefined);
    const first = (await tagOf())!;
    // a2 mounts (its attach clears the tag) and writes; then a1's late CreateTags of the first
    // snapshot lands, as it does when a1's re-read of the volume lagged and missed a2's attach.
    const mp = await a2.driver.mount('rollback', ctx('rollback'));
    const volumeId = (await world.volumesNamed('rollback'))[0]!.VolumeId!;
    await world.ec2.send(new CreateTagsCommand({ Resources: [volumeId], Tags: [{ Key: 'stowage:snapshot-current', Value: first }] }));
    await writeFile(path.join(mp, 'db'), 'v2');
    await a2.driver.unmount('rollback', ctx('rollback'));
    await world.ec2.send(new CreateTagsCommand({ Resources: [volumeId], Tags: [{ Key: 'stowage:snapshot-current', Value: first }] }));
    const moved = await b.driver.mount('rollback', ctx('rollback', 60_000));
    expect(await readFile(path.join(moved, 'db'), 'utf8')).toBe('v2');
    await b.driver.unmount('rollback', ctx('rollback'));
  });

  test('1: a held reference is answered only while the kernel shows the volume mounted there', async () => {
    const node = await nodeA();
    const { service } = await serviceOn(node, 'state-1b', 5000);
    await service.create('held', { backing: 'relocatable', size: '1' });
    const first = await service.mount('held', 'id-1');
    await writeFile(path.join(first, 'db'), 'committed');
    // Somebody unmounts it under the plugin (an operator, a crash of the mount namespace).
    await node.host.unmount(first);
    const second = await service.mount('held', 'id-2');
    expect(await mountedSource(second)).toBeDefined();
    expect(await readFile(path.join(second, 'db'), 'utf8')).toBe('committed');
    await service.unmount('held', 'id-2');
    await service.unmount('held', 'id-1');
    await node.driver.remove('held', ctx('held'));
    service.close();
  });
});

asRoot('never lose data under eventual consistency (issue 15; chaos finding 1)', () => {
  let world: EbsWorld;

  beforeAll(async () => {
    world = await startEbsWorld('data-safety-eventual', { consistency: { mode: 'eventual', maxLagMs: 800, seed: 15 } });
  });
  afterAll(async () => {
    await world?.close();
  });

  test('under a lagging Describe: Create waits for its volume, a move decides on a fresh read, and what was written just before arrives intact', async () => {
    const a = await world.startNode('us-east-1a');
    const b = await world.startNode('us-east-1b');
    await a.driver.create('lagging', OPTIONS, ctx('lagging'));
    await until('one volume visible', async () => (await world.volumesNamed('lagging')).length === 1, 5000);
    const mp = await a.driver.mount('lagging', ctx('lagging', 60_000));
    await writeFile(path.join(mp, 'db'), 'before the move');
    await a.driver.unmount('lagging', ctx('lagging', 60_000));
    // As Swarm does: a retryable answer (a lagging Describe still shows the old attachment) is asked again.
    const moved = await retrying(() => b.driver.mount('lagging', ctx('lagging', 30_000)));
    expect(await readFile(path.join(moved, 'db'), 'utf8')).toBe('before the move');
    await b.driver.unmount('lagging', ctx('lagging', 60_000));
    await until('only the moved volume is left', async () => (await world.volumesNamed('lagging')).filter((v) => v.State !== 'deleted').length === 1, 10_000);
  });
});
