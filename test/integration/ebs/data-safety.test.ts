/**
 * Issue 15's ways to lose data, each reproduced on real loop devices, mkfs and mount, through the
 * real SDK against localcloud. Every test here failed on the code before its fix.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CreateTagsCommand } from '@aws-sdk/client-ec2';
import { silentLogger } from '../../../core/log.js';
import { parseOptions } from '../../../plugin/options/parse.js';
import { RefcountStore } from '../../../plugin/refcounts.js';
import { VolumeService } from '../../../plugin/volume-service.js';
import { readMountinfo } from '../../../host/mountinfo.js';

const asRoot = process.getuid?.() === 0 ? describe : describe.skip;
import { ctx, startEbsWorld, until, type EbsWorld } from './ebs-world.js';

const OPTIONS = parseOptions({ backing: 'relocatable', size: '1' }, 'relocatable').options;

/** The device the kernel shows mounted at `target`, or undefined: the only proof a Mount's answer is the volume. */
async function mountedSource(target: string): Promise<string | undefined> {
  return (await readMountinfo()).find((m) => m.target === target)?.source;
}

asRoot('never lose data (issue 15)', () => {
  let world: EbsWorld;

  beforeAll(async () => {
    world = await startEbsWorld('data-safety');
  });
  afterEach(() => world.lc.setFaults({}));
  afterAll(async () => {
    await world?.close();
  });

  test('1: an Unmount whose detach EC2 keeps throttling lets the reference go; the next Mount answers the mounted volume, never an empty folder', async () => {
    const node = await world.startNode('us-east-1a');
    const stateDir = path.join(world.dir, 'state-1');
    await mkdir(stateDir, { recursive: true });
    const refcounts = new RefcountStore(stateDir, silentLogger);
    await refcounts.load(async () => false);
    const service = new VolumeService({ drivers: [node.driver], refcounts, log: silentLogger, defaultBacking: 'relocatable', mountTimeoutMs: 5000, requestTimeoutMs: 2000 });
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

  test('1: a held reference is answered only while the kernel shows the volume mounted there', async () => {
    const node = world.nodes[0]!;
    const stateDir = path.join(world.dir, 'state-1b');
    await mkdir(stateDir, { recursive: true });
    const refcounts = new RefcountStore(stateDir, silentLogger);
    await refcounts.load(async () => false);
    const service = new VolumeService({ drivers: [node.driver], refcounts, log: silentLogger, defaultBacking: 'relocatable', mountTimeoutMs: 5000, requestTimeoutMs: 5000 });
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
