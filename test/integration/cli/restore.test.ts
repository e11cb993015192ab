/**
 * `stowage backups` and `stowage restore` (issue 17 item 3) on real loop devices and filesystems:
 * a restore into a new name holds the backup byte for byte; replacing a detached volume keeps the
 * replaced data in a snapshot, and a crash midway is resumed by running the command again.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { VolumeReads } from '../../../aws/volume-reads.js';
import { VolumeWaiter } from '../../../aws/volume-waiter.js';
import { silentLogger } from '../../../core/log.js';
import { backupsCommand } from '../../../cli/ops/backups.js';
import { runOpsCommand, type OpsCommand } from '../../../cli/ops/command.js';
import { restoreCommand } from '../../../cli/ops/restore.js';
import { parseOptions } from '../../../plugin/options/parse.js';
import { SnapshotStore } from '../../../snapshot/snapshot-store.js';
import { VolumeRestorer } from '../../../snapshot/volume-restore.js';
import { toEbsVolume } from '../../../core/schema/ebs-volume.js';
import { asRoot } from '../../helpers/as-root.js';
import { CLUSTER, ctx, startEbsWorld, type EbsNode, type EbsWorld } from '../ebs/ebs-world.js';

const OPTIONS = parseOptions({ backing: 'relocatable', size: '1' }, 'relocatable').options;
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

asRoot('stowage backups and stowage restore (issue 17.3)', () => {
  let world: EbsWorld;
  let node: EbsNode;
  let store: SnapshotStore;

  beforeAll(async () => {
    process.env.AWS_ACCESS_KEY_ID ??= 'x';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'x';
    world = await startEbsWorld('restore');
    node = await world.startNode('us-east-1a');
    store = new SnapshotStore({ ec2: world.ec2, counter: world.counter, cluster: CLUSTER, pollInitialMs: 20 });
  });

  afterAll(async () => {
    await world.close();
  });

  async function stowage(command: OpsCommand, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    let stdout = '';
    let stderr = '';
    const sink = (add: (s: string) => void) => new Writable({ write: (c, _e, done) => { add(String(c)); done(); } });
    const code = await runOpsCommand(command, [...args, '--endpoint', world.lc.url, '--region', world.lc.region, '--cluster', CLUSTER], {
      stdout: sink((s) => (stdout += s)), stderr: sink((s) => (stderr += s)), env: {}, signal: new AbortController().signal,
    });
    return { code, stdout, stderr };
  }

  /** Writes `data` into the volume's file, unmounted afterwards. */
  async function writeVolume(name: string, data: Buffer): Promise<void> {
    const mp = await node.driver.mount(name, ctx(name));
    await writeFile(path.join(mp, 'data.bin'), data);
    await node.driver.unmount(name, ctx(name));
  }

  async function readVolume(name: string): Promise<Buffer> {
    const mp = await node.driver.mount(name, ctx(name));
    try {
      return await readFile(path.join(mp, 'data.bin'));
    } finally {
      await node.driver.unmount(name, ctx(name));
    }
  }

  async function backup(name: string): Promise<string> {
    const [v] = await world.volumesNamed(name);
    // As the backup taker takes it: recording the volume, for a restore once it is gone.
    const taken = await store.createKeeping(toEbsVolume(v!, CLUSTER)!, 'backup', ctx(name));
    await store.waitCompleted(taken.id, ctx(name), () => undefined);
    return taken.id;
  }

  test('restore --as NEWNAME holds the backup byte for byte; the volume itself is untouched; backups lists it', async () => {
    await node.driver.create('orders', OPTIONS, ctx('orders'));
    const atBackup = randomBytes(3 * 1024 * 1024);
    await writeVolume('orders', atBackup);
    const snap = await backup('orders');
    const later = randomBytes(1024 * 1024);
    await writeVolume('orders', later);

    const listed = await stowage(backupsCommand, ['orders', '--json']);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout).backups).toEqual([expect.objectContaining({ snapshotId: snap, kind: 'backup', region: world.lc.region, state: 'completed' })]);

    const restored = await stowage(restoreCommand, ['orders', '--from', snap, '--as', 'orders-then', '--json']);
    expect(restored.stderr).toBe('');
    expect(restored.code).toBe(0);
    expect(JSON.parse(restored.stdout)).toMatchObject({ name: 'orders-then', restoredFrom: snap, zone: 'us-east-1a' });
    expect(sha(await readVolume('orders-then'))).toBe(sha(atBackup));
    expect(sha(await readVolume('orders'))).toBe(sha(later));

    // A rerun answers the volume it made; another snapshot into a taken name is refused, naming it.
    expect(JSON.parse((await stowage(restoreCommand, ['orders', '--from', snap, '--as', 'orders-then', '--json'])).stdout).volumeId).toBe(JSON.parse(restored.stdout).volumeId);
    const taken = await stowage(restoreCommand, ['orders', '--from', await backup('orders'), '--as', 'orders-then']);
    expect(taken.code).not.toBe(0);
    expect(taken.stderr).toContain('orders-then already exists');
    expect((await stowage(restoreCommand, ['orders', '--from', 'snap-nope'])).stderr).toContain('"snap-nope" is not a snapshot id');
  }, 60_000);

  test('replacing a detached volume keeps its data in a snapshot; a crash midway is resumed by a rerun', async () => {
    await node.driver.create('ledger', OPTIONS, ctx('ledger'));
    const atBackup = randomBytes(2 * 1024 * 1024);
    await writeVolume('ledger', atBackup);
    const snap = await backup('ledger');
    const replacedData = randomBytes(2 * 1024 * 1024);
    await writeVolume('ledger', replacedData);
    const [old] = await world.volumesNamed('ledger');

    // The first run dies right after it made the replacement, before the old volume is retired.
    const crashing = new VolumeRestorer({
      ec2: world.ec2, counter: world.counter, cluster: CLUSTER, snapshots: store,
      reads: new VolumeReads({ ec2: world.ec2, counter: world.counter, cluster: CLUSTER, pollInitialMs: 20 }),
      waiter: new VolumeWaiter({ ec2: world.ec2, counter: world.counter, log: silentLogger, initialDelayMs: 20 }),
      afterStep: (s) => {
        if (s === 'created') throw new Error('killed');
      },
    });
    const current = toEbsVolume(old!, CLUSTER)!;
    await expect(
      crashing.replace(current, (await store.find(snap, ctx('ledger')))!, { size: 1, type: 'gp3', iops: 3000, throughput: 125, encrypted: true, kmskeyid: undefined, options: { fs: 'ext4', mountopts: [] }, initRate: undefined }, 'us-east-1a', ctx('ledger')),
    ).rejects.toThrow('killed');
    // Midway the old volume still carries the name; the replacement is an unfinished copy of it.
    const midway = (await world.volumesNamed('ledger')).map((v) => toEbsVolume(v, CLUSTER)!);
    expect(midway.map((v) => v.movedFrom ?? v.id).sort()).toEqual([old!.VolumeId, old!.VolumeId]);

    const rerun = await stowage(restoreCommand, ['ledger', '--from', snap, '--json']);
    expect(rerun.stderr).toBe('');
    expect(rerun.code).toBe(0);
    const result = JSON.parse(rerun.stdout) as { kept: string; replaced: string; volumeId: string };
    expect(result.replaced).toBe(old!.VolumeId);
    expect(sha(await readVolume('ledger'))).toBe(sha(atBackup));
    expect((await world.volumesNamed('ledger')).filter((v) => v.State !== 'deleted').map((v) => v.VolumeId)).toEqual([result.volumeId]);

    // One snapshot kept the replaced data (the rerun found the first run's), and it restores.
    const kept = (await store.ofName('ledger', ctx('ledger'))).filter((s) => s.replacedBy === snap);
    expect(kept.map((s) => s.id)).toEqual([result.kept]);
    expect(kept[0]!.reason).toBe('operator');
    expect((await stowage(restoreCommand, ['ledger', '--from', result.kept, '--as', 'ledger-replaced'])).code).toBe(0);
    expect(sha(await readVolume('ledger-replaced'))).toBe(sha(replacedData));

    // A third run has nothing left to do and says where the volume is.
    const again = await stowage(restoreCommand, ['ledger', '--from', snap, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).volumeId).toBe(result.volumeId);
  }, 90_000);

  test('a removed volume comes back from its backup under its own name, as the backup recorded it: type, IOPS, options, data', async () => {
    const options = parseOptions({ backing: 'relocatable', size: '10', iops: '4000', uid: '999', gid: '999', mode: '0700' }, 'relocatable').options;
    await node.driver.create('invoices', options, ctx('invoices'));
    const data = randomBytes(2 * 1024 * 1024);
    await writeVolume('invoices', data);
    const snap = await backup('invoices');
    await node.driver.remove('invoices', ctx('invoices'));
    expect((await world.volumesNamed('invoices')).filter((v) => v.State !== 'deleted' && v.State !== 'deleting')).toEqual([]);

    const restored = await stowage(restoreCommand, ['invoices', '--from', snap, '--zone', 'us-east-1a', '--json']);
    expect(restored.stderr).toBe('');
    expect(restored.code).toBe(0);
    expect(JSON.parse(restored.stdout)).toMatchObject({ name: 'invoices', restoredFrom: snap, zone: 'us-east-1a' });
    const [made] = (await world.volumesNamed('invoices')).filter((v) => v.State !== 'deleted');
    expect(made).toMatchObject({ Size: 10, VolumeType: 'gp3', Iops: 4000, Throughput: 125 });
    expect(toEbsVolume(made!, CLUSTER)!.rootOwner).toEqual({ uid: 999, gid: 999, mode: '0700' });
    // A rerun (after a crash, before anything mounted it) answers the same volume.
    expect(JSON.parse((await stowage(restoreCommand, ['invoices', '--from', snap, '--zone', 'us-east-1a', '--json'])).stdout).volumeId).toBe(made!.VolumeId);
    expect(sha(await readVolume('invoices'))).toBe(sha(data));
  }, 90_000);

  test('a removed volume whose snapshot does not record it (an earlier version\'s) is refused, saying why', async () => {
    await node.driver.create('legacy', OPTIONS, ctx('legacy'));
    await writeVolume('legacy', randomBytes(1024));
    const [v] = await world.volumesNamed('legacy');
    const plain = await store.create(toEbsVolume(v!, CLUSTER)!, 'backup', ctx('legacy'));
    await store.waitCompleted(plain.id, ctx('legacy'), () => undefined);
    await node.driver.remove('legacy', ctx('legacy'));
    const refused = await stowage(restoreCommand, ['legacy', '--from', plain.id]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`snapshot ${plain.id} does not record its type and options`);
    expect((await world.volumesNamed('legacy')).filter((x) => x.State !== 'deleted' && x.State !== 'deleting')).toEqual([]);
  }, 90_000);
});
