/**
 * Issue 17.1, 17.6, 17.7 on localcloud with the real SDK, real loop devices, mkfs and mount:
 * `stowage modify` grows ext4 and xfs while a file on them is open and written; a volume grown while
 * detached grows at its next Mount; initrate reaches EC2 only with a snapshot and Status shows the
 * initialization; a relocatable volume's root has its uid, gid and mode after the first mount only.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import path from 'node:path';
import { Writable } from 'node:stream';
import { CreateSnapshotCommand, CreateVolumeCommand, DescribeSnapshotsCommand, DescribeVolumesModificationsCommand } from '@aws-sdk/client-ec2';
import { runOpsCommand } from '../../../cli/ops/command.js';
import { modifyCommand } from '../../../cli/ops/modify.js';
import { inspectCommand } from '../../../cli/ops/inspect.js';
import type { Filesystem, VolumeOptions } from '../../../core/volume-options.js';
import { asRoot } from '../../helpers/as-root.js';
import { CLUSTER, ctx, startEbsWorld, until, type EbsNode, type EbsWorld } from './ebs-world.js';
import { gp3Options } from '../../helpers/volume-options.js';

const ZONE = 'us-east-1a';
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const OPTIONS = gp3Options(1);

const run = promisify(execFile);

/**
 * Whether this kernel lets a mounted ext4 grow: EXT4_IOC_RESIZE_FS needs CAP_SYS_RESOURCE, which
 * some VMs withhold even from root (this one's did). Where it does not, the volume grows at its next Mount.
 */
async function ext4GrowsOnline(dir: string): Promise<boolean> {
  const image = path.join(dir, 'probe.img');
  const target = path.join(dir, 'probe');
  await mkdir(target, { recursive: true });
  await run('truncate', ['-s', '64M', image]);
  const loop = (await run('losetup', ['--find', '--show', image])).stdout.trim();
  try {
    await run('mkfs.ext4', ['-q', '-F', loop]);
    await run('mount', [loop, target]);
    try {
      await run('truncate', ['-s', '128M', image]);
      await run('losetup', ['-c', loop]);
      return await run('resize2fs', [loop]).then(() => true, () => false);
    } finally {
      await run('umount', [target]);
    }
  } finally {
    await run('losetup', ['-d', loop]);
    await rm(image, { force: true });
  }
}

/** `stowage COMMAND ARGS` in this process, against the world's localcloud. */
async function stowage(world: EbsWorld, command: typeof modifyCommand, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const sink = (add: (s: string) => void) => new Writable({ write: (chunk, _enc, done) => { add(String(chunk)); done(); } });
  const code = await runOpsCommand(command, [...args, '--endpoint', world.lc.url, '--region', world.lc.region], {
    stdout: sink((s) => (stdout += s)),
    stderr: sink((s) => (stderr += s)),
    env: { AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x', STOWAGE_CLUSTER: CLUSTER, STOWAGE_STATE_DIR: path.join(world.dir, 'no-state') },
    signal: new AbortController().signal,
  });
  return { code, stdout, stderr };
}

asRoot('the volume\'s life on localcloud: modify, initrate, root owner (real SDK, loop devices)', () => {
  let world: EbsWorld;
  let node: EbsNode;
  let ext4Online: boolean;

  const savedEnv = { ...process.env };
  beforeAll(async () => {
    // The commands' AWS clients take credentials the SDK's way, from the process environment.
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x' });
    world = await startEbsWorld('life');
    node = await world.startNode(ZONE, { growCheckMs: 100 });
    ext4Online = await ext4GrowsOnline(world.dir);
  });
  afterAll(async () => {
    process.env = savedEnv;
    await world?.close();
  });

  const filesystemBytes = async (name: string, fs: Filesystem) => {
    const mountpoint = path.join(node.mountRoot, name);
    const source = (await node.host.mountAt(mountpoint))!.source;
    return node.host.filesystemSize(source, fs, mountpoint);
  };

  test.each<Filesystem>(['ext4', 'xfs'])('%s: modify --size grows the filesystem while a file on it is open and written (online where the kernel lets it)', async (fs) => {
    const name = `grow-${fs}`;
    const online = fs === 'xfs' || ext4Online;
    await node.driver.create(name, { ...OPTIONS, fs }, ctx(name));
    let mountpoint = await node.driver.mount(name, ctx(name));
    const file = await open(path.join(mountpoint, 'open.dat'), 'w');
    try {
      await file.write(Buffer.alloc(64 * MiB, 1));
      expect(await filesystemBytes(name, fs)).toBeLessThan(1.01 * GiB);

      const shrink = await stowage(world, modifyCommand, [name, '--size', '0']);
      expect([shrink.code, shrink.stderr]).toEqual([2, expect.stringContaining('--size')]);
      const smaller = await stowage(world, modifyCommand, [name, '--type', 'st1']);
      expect(smaller.stderr).toContain('--type=st1 needs a size from 125 to 16384 GiB; give --size');

      const modified = await stowage(world, modifyCommand, [name, '--size', '2', '--json']);
      expect([modified.code, modified.stderr]).toEqual([0, expect.stringContaining(`${name} modifying`)]);
      const report = JSON.parse(modified.stdout) as { modification: { state: string; target: { size: number } }; nextAllowedAt: string };
      expect(['optimizing', 'completed']).toContain(report.modification.state);
      expect(report.modification.target.size).toBe(2);
      expect(Date.parse(report.nextAllowedAt) - Date.now()).toBeGreaterThan(5.9 * 3600_000);

      // The node holding the volume notices by itself; the open file keeps working throughout.
      if (online) await until(`${name} grown`, async () => (await filesystemBytes(name, fs)) > 1.9 * GiB, 20_000);
      else {
        // This kernel refuses: the node tries, fails, and leaves the filesystem whole at its old size.
        await new Promise((resolve) => setTimeout(resolve, 500));
        expect(await filesystemBytes(name, fs)).toBeLessThan(1.01 * GiB);
      }
      await file.write(Buffer.alloc(64 * MiB, 2));
      await file.sync();
    } finally {
      await file.close();
    }
    if (!online) {
      await node.driver.unmount(name, ctx(name));
      mountpoint = await node.driver.mount(name, ctx(name));
      expect(await filesystemBytes(name, fs)).toBeGreaterThan(1.9 * GiB);
    }
    const tagsNow = async () => Object.fromEntries(((await world.volumesNamed(name))[0]!.Tags ?? []).map((t) => [t.Key, t.Value]));
    await until('the size recorded', async () => Number((await tagsNow())['stowage:fs-size-mib']) > 1900);
    expect((await tagsNow())['stowage:modified-at']).toBeDefined();
    const data = await readFile(path.join(mountpoint, 'open.dat'));
    expect([data.length, data[0], data[data.length - 1]]).toEqual([128 * MiB, 1, 2]);

    // Status on the node: the modification and the filesystem's size.
    const info = (await node.driver.get(name, ctx(name)))!;
    expect(info.status.modification).toMatch(/^(optimizing \d+%|completed): 1 → 2 GiB, gp3/);
    expect(String(info.status.filesystemSize)).toMatch(/^20[0-9]{2} MiB$/);
    const inspected = await stowage(world, inspectCommand, [name]);
    expect(inspected.stdout).toMatch(/Modified: +(optimizing|completed)/);
    expect(inspected.stdout).toMatch(/Filesystem: .*20[0-9]{2} MiB as its holder last measured/);

    // One modification per six hours: refused, saying when the next is allowed.
    await until('the modification completed', async () => {
      const out = await world.ec2.send(new DescribeVolumesModificationsCommand({ VolumeIds: [info.status.volumeId as string] }));
      return out.VolumesModifications?.[0]?.ModificationState === 'completed';
    });
    const again = await stowage(world, modifyCommand, [name, '--size', '3']);
    expect(again.code).toBe(4);
    expect(again.stderr).toMatch(/cannot be modified yet: its last modification started .* and not before \d{4}-\d{2}-\d{2}T/);
    await node.driver.unmount(name, ctx(name));
  }, 60_000);

  test('a volume grown while detached is grown by its next Mount', async () => {
    const name = 'grow-detached';
    await node.driver.create(name, OPTIONS, ctx(name));
    await node.driver.mount(name, ctx(name));
    await node.driver.unmount(name, ctx(name));
    expect((await stowage(world, modifyCommand, [name, '--size', '2'])).code).toBe(0);
    await node.driver.mount(name, ctx(name));
    expect(await filesystemBytes(name, 'ext4')).toBeGreaterThan(1.9 * GiB);
    await node.driver.unmount(name, ctx(name));
  }, 60_000);

  test('initrate: sent with a CreateVolume from a snapshot, where Status shows the initialization; refused by EC2 without one', async () => {
    const source = (await world.volumesNamed('grow-detached'))[0]!.VolumeId!;
    const snap = await world.ec2.send(new CreateSnapshotCommand({ VolumeId: source, TagSpecifications: [{ ResourceType: 'snapshot', Tags: [{ Key: 'stowage:cluster', Value: CLUSTER }] }] }));
    await until('snapshot completed', async () => (await world.ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snap.SnapshotId!] }))).Snapshots?.[0]?.State === 'completed');
    await node.driver.create('restored', { ...OPTIONS, size: 2, snapshot: snap.SnapshotId!, initrate: 300 }, ctx('restored'));
    const restored = (await world.volumesNamed('restored'))[0]!;
    expect(restored.VolumeInitializationRate).toBe(300);
    // 2 GiB at 300 MiB/s: about 7 s of initialization, watched from Status, then from stowage inspect to its end.
    const info = (await node.driver.get('restored', ctx('restored')))!;
    expect(info.status.initialization).toMatch(/^initializing \d+% \(provisioned-rate, about \d+ s left\)$/);
    await until('initialized', async () => (await stowage(world, inspectCommand, ['restored'])).stdout.includes('Initialized: completed (provisioned-rate), initrate 300 MiB/s'), 15_000);

    await node.driver.create('blank-initrate', { ...OPTIONS, initrate: 100 }, ctx('blank-initrate'));
    expect((await world.volumesNamed('blank-initrate'))[0]!.VolumeInitializationRate).toBeUndefined();
    await expect(world.ec2.send(new CreateVolumeCommand({ AvailabilityZone: ZONE, Size: 1, VolumeInitializationRate: 100 })))
      .rejects.toMatchObject({ name: 'InvalidParameterCombination' });
  }, 60_000);

  test.each<Filesystem>(['ext4', 'xfs'])('%s: uid=999,gid=999,mode=0700 owns the root after the first mount; a later mount never changes it', async (fs) => {
    const name = `owned-${fs}`;
    await node.driver.create(name, { ...OPTIONS, fs, uid: 999, gid: 999, mode: '0700' }, ctx(name));
    const mountpoint = await node.driver.mount(name, ctx(name));
    const first = await stat(mountpoint);
    expect([first.uid, first.gid, (first.mode & 0o7777).toString(8)]).toEqual([999, 999, '700']);
    // The task changes its root; the next mount keeps what the task made.
    await chmod(mountpoint, 0o750);
    await node.driver.unmount(name, ctx(name));
    await node.driver.mount(name, ctx(name));
    const later = await stat(mountpoint);
    expect([later.uid, later.gid, (later.mode & 0o7777).toString(8)]).toEqual([999, 999, '750']);
    await node.driver.unmount(name, ctx(name));
  }, 60_000);
});
