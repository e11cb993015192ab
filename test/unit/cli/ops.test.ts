import {
  CreateSnapshotCommand,
  DeleteVolumeCommand,
  DescribeRegionsCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  EC2Client,
  type Volume,
} from '@aws-sdk/client-ec2';
import { DescribeAccessPointsCommand, EFSClient } from '@aws-sdk/client-efs';
import { mockClient } from 'aws-sdk-client-mock';
import { parseArgs } from '../../../cli/ops/args.js';
import type { OpsCommand } from '../../../cli/ops/command.js';
import { ExitCode, UsageError } from '../../../cli/ops/exit-codes.js';
import { planRegion } from '../../../cli/ops/gc.js';
import { gcCommand } from '../../../cli/ops/gc.js';
import type { RegionInventory, SnapshotRecord, VolumeRecord } from '../../../cli/ops/inventory.js';
import { lsCommand } from '../../../cli/ops/ls.js';
import { relocateCommand } from '../../../cli/ops/relocate.js';
import { keptEntry } from '../../../drivers/shared/volume-folders.js';
import { runOps } from '../../helpers/run-ops.js';

const ec2 = mockClient(EC2Client);
const efs = mockClient(EFSClient);

function tags(name: string, generation = 1, extra: Record<string, string> = {}) {
  return Object.entries({ 'stowage:cluster': 'c1', 'stowage:volume': name, 'stowage:backing': 'relocatable', 'stowage:generation': String(generation), ...extra })
    .map(([Key, Value]) => ({ Key, Value }));
}

function ebs(id: string, name: string, zone: string, more: Partial<Volume> = {}, generation = 1): Volume {
  return { VolumeId: id, AvailabilityZone: zone, State: 'available', Size: 1, VolumeType: 'gp3', Tags: tags(name, generation), CreateTime: new Date(1000), ...more };
}

async function run(command: OpsCommand, argv: string[], env: Record<string, string> = {}) {
  return runOps(command, argv, { AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x', STOWAGE_CLUSTER: 'c1', ...env });
}

beforeEach(() => {
  ec2.reset();
  efs.reset();
  ec2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });
  efs.on(DescribeAccessPointsCommand).resolves({ AccessPoints: [] });
});

describe('command line', () => {
  test('common flags: repeatable regions, endpoints per region or for all, cluster from the environment', () => {
    const parsed = parseArgs(
      ['db1', '--region', 'us-east-1', '--region=eu-west-1', '--endpoint', 'us-east-1=http://127.0.0.1:1/', '--endpoint', 'http://lc:2', '--json', '--to-zone', 'us-east-1b'],
      { 'to-zone': 'value' },
      { STOWAGE_CLUSTER: 'prod' },
    );
    expect(parsed.common).toMatchObject({ regions: ['us-east-1', 'eu-west-1'], cluster: 'prod', endpoint: 'http://lc:2', json: true });
    expect([...parsed.common.endpointByRegion]).toEqual([['us-east-1', 'http://127.0.0.1:1']]);
    expect(parsed.positionals).toEqual(['db1']);
    expect(parsed.flags.get('to-zone')).toBe('us-east-1b');
  });

  test.each([
    [['--region', 'Mars'], 'region "Mars" is not an AWS region name'],
    [['--endpoint', 'ftp://x'], 'must be http:// or https://'],
    [['--cluster', '-x'], '--cluster "-x"'],
    [['--region'], '--region needs a value'],
    [['--json=yes'], '--json takes no value'],
    [['--all-regions', '--region', 'us-east-1'], 'exclude each other'],
    [['--nope'], 'unknown flag --nope'],
  ])('%j is refused naming the problem', (argv, message) => {
    expect(() => parseArgs(argv, {}, {})).toThrow(UsageError);
    expect(() => parseArgs(argv, {}, {})).toThrow(message);
  });

  test('no region anywhere: exit 2 before any AWS call', async () => {
    const { code, stderr } = await run(lsCommand, []);
    expect(code).toBe(ExitCode.usage);
    expect(stderr).toContain('no region: pass --region REGION');
    expect(ec2.calls()).toHaveLength(0);
  });

  test('--help prints usage with examples and the exit codes, exit 0', async () => {
    const { code, stdout } = await run(gcCommand, ['--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('Examples:');
    expect(stdout).toContain('Exit codes: 0 ok, 1 failed, 2 usage, 3 not found, 4 refused, 5 some regions failed, 130 interrupted');
  });
});

describe('ls', () => {
  test('--all-regions asks DescribeRegions once, then one filtered Describe per region and kind', async () => {
    ec2.on(DescribeRegionsCommand).resolves({ Regions: [{ RegionName: 'us-west-2' }, { RegionName: 'eu-west-1' }] });
    ec2.on(DescribeVolumesCommand).resolves({ Volumes: [ebs('vol-1', 'db1', 'us-west-2a')] });
    const { code, stdout } = await run(lsCommand, ['--all-regions', '--json']);
    expect(code).toBe(0);
    const out = JSON.parse(stdout) as { regions: string[]; volumes: { name: string; region: string }[] };
    expect(out.regions).toEqual(['eu-west-1', 'us-west-2']);
    expect(out.volumes.map((v) => `${v.name}@${v.region}`).sort()).toEqual(['db1@eu-west-1', 'db1@us-west-2']);
    expect(ec2.commandCalls(DescribeRegionsCommand)).toHaveLength(1);
    expect(ec2.commandCalls(DescribeVolumesCommand)).toHaveLength(2);
    expect(ec2.commandCalls(DescribeSnapshotsCommand)).toHaveLength(2);
    expect(efs.commandCalls(DescribeAccessPointsCommand)).toHaveLength(2);
    for (const c of ec2.commandCalls(DescribeVolumesCommand)) {
      expect(c.args[0].input.Filters).toEqual([{ Name: 'tag:stowage:cluster', Values: ['c1'] }]);
    }
  });

  test('a region that fails is named on stderr; the others are listed; exit 5', async () => {
    ec2.on(DescribeVolumesCommand).callsFake(async (_input, getClient: () => EC2Client) => {
      if ((await getClient().config.region()) === 'eu-west-1') {
        throw Object.assign(new Error('not authorized'), { name: 'UnauthorizedOperation', $metadata: { httpStatusCode: 403, requestId: 'req-9' } });
      }
      return { Volumes: [ebs('vol-1', 'db1', 'us-east-1a')] };
    });
    const { code, stdout, stderr } = await run(lsCommand, ['--region', 'us-east-1', '--region', 'eu-west-1']);
    expect(code).toBe(ExitCode.partial);
    expect(stdout).toMatch(/db1\s+relocatable\s+us-east-1\s+us-east-1a/);
    expect(stderr).toMatch(/region eu-west-1: DescribeVolumes failed: .*not allow.*\[UnauthorizedOperation\].*requestId=req-9/);
  });
});

describe('relocate', () => {
  test('refuses a mounted volume naming its instance, exit 4, and changes nothing', async () => {
    ec2.on(DescribeVolumesCommand).resolves({
      Volumes: [ebs('vol-1', 'db1', 'us-east-1a', { State: 'in-use', Attachments: [{ InstanceId: 'i-0abc12345', State: 'attached', Device: '/dev/xvdf' }] })],
    });
    const { code, stderr } = await run(relocateCommand, ['db1', '--to-zone', 'us-east-1b', '--region', 'us-east-1']);
    expect(code).toBe(ExitCode.refused);
    expect(stderr).toContain('volume db1 is attached to instance i-0abc12345 in us-east-1a (attached); stop the task that mounts it');
    expect(ec2.commandCalls(CreateSnapshotCommand)).toHaveLength(0);
    expect(ec2.commandCalls(DeleteVolumeCommand)).toHaveLength(0);
  });

  test('a volume nowhere: exit 3; a zone of another region: exit 2', async () => {
    ec2.on(DescribeVolumesCommand).resolves({ Volumes: [] });
    expect((await run(relocateCommand, ['db1', '--to-zone', 'us-east-1b', '--region', 'us-east-1'])).code).toBe(ExitCode.notFound);
    ec2.on(DescribeVolumesCommand).resolves({ Volumes: [ebs('vol-1', 'db1', 'us-east-1a')] });
    const other = await run(relocateCommand, ['db1', '--to-zone', 'eu-west-1b', '--region', 'us-east-1']);
    expect(other.code).toBe(ExitCode.usage);
    expect(other.stderr).toContain('zone eu-west-1b is not in region us-east-1');
  });
});

describe('gc plan', () => {
  const volume = (id: string, generation: number, more: Partial<VolumeRecord> = {}): VolumeRecord => ({
    id, name: 'db1', zone: 'us-east-1a', state: 'available', size: 1, type: 'gp3', iops: undefined, throughput: undefined, encrypted: true,
    generation, fs: 'ext4', mountopts: [], kmskeyid: undefined, snapshot: undefined, createdAt: new Date(generation * 1000), attachment: undefined,
    snapshotCurrent: undefined, blank: false, formatted: false, restoredFrom: undefined, lastAttach: undefined, readBarrier: undefined, movedFrom: undefined,
    backup: undefined, backupRetain: 7, drRegion: undefined, initRate: undefined, rootOwner: { uid: 0, gid: 0, mode: '0755' }, filesystemMiB: undefined, modifiedAt: undefined, tagProblems: [], region: 'us-east-1', tags: {}, ...more,
  });
  const snap = (id: string, at: number, state = 'completed', reason = 'unmount'): SnapshotRecord => ({
    id, region: 'us-east-1', name: 'db1', volumeId: 'vol-1', state, progress: 100, startedAt: new Date(at), generation: 1, volumeSize: 1, tags: { 'stowage:snapshot-reason': reason },
  });
  const inv = (volumes: VolumeRecord[], snapshots: SnapshotRecord[] = []): RegionInventory => ({ region: 'us-east-1', volumes, snapshots, accessPoints: [] });

  test('a lower generation beside the current volume is superseded; the current one and attached ones are not', () => {
    const plan = planRegion(inv([volume('vol-old', 1), volume('vol-new', 2)]), 1, new Set());
    expect(plan.map((a) => [a.kind, a.id])).toEqual([['delete-volume', 'vol-old']]);
    const attached = volume('vol-old', 1, { state: 'in-use', attachment: { instanceId: 'i-1', state: 'attached', device: undefined, attachTime: undefined } });
    expect(planRegion(inv([attached, volume('vol-new', 2)]), 1, new Set())).toEqual([]);
  });

  test("a move's copy whose source still exists is left alone", () => {
    const copy = volume('vol-copy', 2, { zone: 'us-east-1b', movedFrom: 'vol-src' });
    expect(planRegion(inv([volume('vol-src', 1), copy]), 1, new Set())).toEqual([]);
  });

  test('snapshots: the newest N completed are kept, pending and referenced ones never go, failed ones do', () => {
    const referenced = volume('vol-1', 1, { tags: { 'stowage:snapshot-current': 'snap-a' } });
    const plan = planRegion(
      inv([referenced], [snap('snap-p', 5, 'pending'), snap('snap-d', 4), snap('snap-c', 3), snap('snap-b', 2), snap('snap-a', 1), snap('snap-e', 0, 'error')]),
      2,
      new Set(),
    );
    expect(plan.map((a) => a.id)).toEqual(['snap-b', 'snap-e']);
  });

  test('issue 15.11: operator snapshots are backups — gc never deletes them, and they do not count against move retention', () => {
    const plan = planRegion(
      inv([volume('vol-1', 1)], [snap('snap-op2', 6, 'completed', 'operator'), snap('snap-m2', 5), snap('snap-op1', 4, 'completed', 'operator'), snap('snap-m1', 3, 'completed', 'move')]),
      1,
      new Set(),
    );
    expect(plan.map((a) => a.id)).toEqual(['snap-m1']);
  });

  test('issue 15.9: two live volumes of one generation are reported, never deleted: gc does not choose which holds the data', () => {
    const plan = planRegion(inv([volume('vol-a', 1), volume('vol-b', 1, { zone: 'us-east-1b' })]), 1, new Set());
    expect(plan.map((a) => [a.kind, a.id])).toEqual([['report-duplicate', 'vol-b']]);
    expect(plan[0]!.reason).toMatch(/vol-a .* and vol-b .* both carry the name/);
  });

  test('an attachment of a terminated instance is detached', () => {
    const held = volume('vol-1', 1, { state: 'in-use', attachment: { instanceId: 'i-dead', state: 'attached', device: undefined, attachTime: undefined } });
    expect(planRegion(inv([held]), 1, new Set(['i-dead']))).toEqual([
      expect.objectContaining({ kind: 'detach', id: 'vol-1', instance: 'i-dead', reason: 'instance i-dead is terminated' }),
    ]);
  });
});

describe('gc of data kept by Remove of shared volumes', () => {
  test('--shared-root lists kept data older than --removed-days, and --apply deletes only that', async () => {
    const { mkdtemp, mkdir, writeFile, utimes, rm, readdir } = await import('node:fs/promises');
    const os = await import('node:os');
    const path = await import('node:path');
    const root = await mkdtemp(path.join(os.tmpdir(), 'stowage-gc-share-'));
    try {
      const kept = path.join(root, 'stowage', 'c1', '.removed');
      const live = path.join(root, 'stowage', 'c1', 'web');
      await mkdir(live, { recursive: true });
      const monthAgo = new Date(Date.now() - 30 * 86_400_000);
      const old = keptEntry('old', monthAgo);
      const recent = keptEntry('new', new Date(Date.now() - 86_400_000));
      for (const entry of [old, recent]) {
        await mkdir(path.join(kept, entry), { recursive: true });
        await writeFile(path.join(kept, entry, 'data'), 'x');
      }
      // The age is the one Remove wrote into the name, not the mtime: a recent entry with an old mtime stays.
      await utimes(path.join(kept, recent), monthAgo, monthAgo);
      ec2.on(DescribeVolumesCommand).resolves({ Volumes: [] });

      const dry = await run(gcCommand, ['--region', 'us-east-1', '--shared-root', root, '--removed-days', '7', '--json']);
      expect(dry.code).toBe(0);
      const plan = JSON.parse(dry.stdout) as { actions: Array<{ kind: string; name: string }> };
      expect(plan.actions).toEqual([expect.objectContaining({ kind: 'delete-removed-data', name: old })]);
      expect(await readdir(kept)).toHaveLength(2);

      const applied = await run(gcCommand, ['--region', 'us-east-1', '--shared-root', root, '--removed-days', '7', '--apply']);
      expect(applied.code).toBe(0);
      expect(await readdir(kept)).toEqual([recent]);
      expect(await readdir(live)).toEqual([]);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  test('--shared-root must be an absolute path', async () => {
    const { code, stderr } = await run(gcCommand, ['--region', 'us-east-1', '--shared-root', 'relative']);
    expect(code).toBe(ExitCode.usage);
    expect(stderr).toContain('--shared-root');
  });
});
