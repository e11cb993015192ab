/**
 * Disaster recovery across regions (issue 17 item 5) on real loop devices, mkfs and mount, through
 * the real SDK against one localcloud serving two regions: a volume with drregion is written in
 * us-east-1, its backups are copied to us-west-2 as they complete; us-east-1 is then lost, `stowage
 * restore NAME --region us-west-2` makes the volume there from the newest copy, and a node in
 * us-west-2 mounts it by name with the same bytes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { DescribeSnapshotsCommand, DescribeVolumesCommand } from '@aws-sdk/client-ec2';
import { Tags } from '../../../core/schema/tags.js';
import { runOpsCommand, type OpsCommand } from '../../../cli/ops/command.js';
import { drCommand } from '../../../cli/ops/dr.js';
import { restoreCommand } from '../../../cli/ops/restore.js';
import { parseOptions } from '../../../plugin/options/parse.js';
import { asRoot } from '../../helpers/as-root.js';
import { CLUSTER, ctx, startEbsWorld, until, type EbsWorld } from './ebs-world.js';

const options = (extra: Record<string, string>) =>
  parseOptions({ backing: 'relocatable', size: '1', ...extra }, 'relocatable', undefined, { backupMinIntervalMs: 1000 }).options;

async function stowage(world: EbsWorld, command: OpsCommand, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d: Buffer) => (stdout += d.toString()));
  err.on('data', (d: Buffer) => (stderr += d.toString()));
  const env = { STOWAGE_CLUSTER: CLUSTER, STOWAGE_STATE_DIR: path.join(world.dir, 'no-plugin') };
  const code = await runOpsCommand(command, [...args, '--endpoint', world.lc.url], { stdout: out, stderr: err, env, signal: new AbortController().signal });
  return { code, stdout, stderr };
}

asRoot('disaster recovery in another region (issue 17.5)', () => {
  let world: EbsWorld;

  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
  beforeAll(async () => {
    // the operator commands take the SDK's default credential chain, as on an operator's machine
    process.env.AWS_ACCESS_KEY_ID = 'x';
    process.env.AWS_SECRET_ACCESS_KEY = 'x';
    world = await startEbsWorld('dr', { regions: ['us-east-1', 'us-west-2'], zones: ['us-east-1a', 'us-east-1b'] });
  });
  afterAll(async () => {
    for (const [key, value] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret]] as const)
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    await world?.close();
  });

  test('each backup is copied to the DR region; restore there from the newest copy mounts by name, byte for byte', async () => {
    const east = await world.startNode('us-east-1a', {
      backups: {
        tickMs: 200,
        drCopy: { ec2In: (r) => world.ec2In(r), counter: world.counter, cluster: CLUSTER, sourceRegion: 'us-east-1', kmsKeyId: 'alias/stowage-dr' },
      },
    });
    await east.driver.create('db', options({ backup: '1s', backupretain: '2', drregion: 'us-west-2', throughput: '200' }), ctx('db'));
    const mp = await east.driver.mount('db', ctx('db'));
    const data = randomBytes(3 * 1024 * 1024);
    await writeFile(path.join(mp, 'table.bin'), data);

    const west = world.ec2In('us-west-2');
    const copies = async () =>
      (
        await west.send(
          new DescribeSnapshotsCommand({ Filters: [{ Name: `tag:${Tags.volume}`, Values: ['db'] }, { Name: `tag:${Tags.snapshotReason}`, Values: ['dr-copy'] }] }),
        )
      ).Snapshots ?? [];
    // a copy whose backup started after the write holds the file
    const written = Date.now();
    await until(
      'a completed DR copy of a backup taken after the write',
      async () => (await copies()).some((c) => c.State === 'completed' && Date.parse(c.Tags!.find((t) => t.Key === Tags.takenAt)!.Value!) > written),
      30_000,
    );
    // retention keeps backupretain completed copies there
    await until('backupretain copies at most', async () => (await copies()).filter((c) => c.State === 'completed').length <= 2, 30_000);
    const [copy] = await copies();
    expect(copy).toMatchObject({ Encrypted: true, KmsKeyId: 'alias/stowage-dr' });
    expect(Object.fromEntries(copy!.Tags!.map((t) => [t.Key, t.Value]))).toMatchObject({
      [Tags.cluster]: CLUSTER,
      [Tags.volume]: 'db',
      [Tags.sourceRegion]: 'us-east-1',
      [Tags.fs]: 'ext4',
      [Tags.backup]: '1s',
    });

    const status = await stowage(world, drCommand, ['status', '--region', 'us-east-1', '--region', 'us-west-2', '--json']);
    expect([status.code, status.stderr]).toEqual([0, '']);
    const [row] = (JSON.parse(status.stdout) as { volumes: { name: string; region: string; drRegion: string; rpoSeconds: number }[] }).volumes;
    expect(row).toMatchObject({ name: 'db', region: 'us-east-1', drRegion: 'us-west-2' });
    expect(row!.rpoSeconds).toBeLessThan(60);

    // us-east-1 is lost: the node stops, every call there fails
    await east.driver.stop();
    world.lc.setFaults({ serverErrorRate: 1 }, 'us-east-1');

    // the DR region alone still tells where each volume came from and how old its data is
    const lost = await stowage(world, drCommand, ['status', '--region', 'us-west-2', '--json']);
    expect([lost.code, lost.stderr]).toEqual([0, '']);
    expect((JSON.parse(lost.stdout) as { volumes: { name: string; region: string }[] }).volumes).toEqual([
      expect.objectContaining({ name: 'db', region: 'us-east-1', drRegion: 'us-west-2' }),
    ]);

    const restored = await stowage(world, restoreCommand, ['db', '--region', 'us-west-2', '--zone', 'us-west-2b', '--json']);
    expect([restored.code, restored.stderr]).toEqual([0, expect.stringMatching(/available .* 100%/)]);
    const result = JSON.parse(restored.stdout) as { volumeId: string; zone: string; sourceRegion: string };
    expect(result).toMatchObject({ zone: 'us-west-2b', sourceRegion: 'us-east-1' });
    // made as the copy recorded the volume, not at gp3's baseline
    const [made] = (await west.send(new DescribeVolumesCommand({ VolumeIds: [result.volumeId] }))).Volumes ?? [];
    expect(made).toMatchObject({ VolumeType: 'gp3', Iops: 3000, Throughput: 200 });
    // a second restore is refused: the name lives there now
    expect((await stowage(world, restoreCommand, ['db', '--region', 'us-west-2'])).code).toBe(4);

    const dr = await world.startNode('us-west-2b');
    const there = await dr.driver.mount('db', ctx('db'));
    const back = await readFile(path.join(there, 'table.bin'));
    expect(createHash('sha256').update(back).digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    await dr.driver.unmount('db', ctx('db'));
  }, 120_000);
});
