import { spawn } from 'node:child_process';
import {
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  type EC2Client,
} from '@aws-sdk/client-ec2';
import { PLUGIN_MAIN } from '../../helpers/plugin-process.js';
import { startTestCloud, type TestCloud } from '../localcloud/helpers.js';

const CLUSTER = 'ops-it';

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `stowage ARGS` as an operator runs it, with credentials localcloud accepts and no AWS_REGION. */
function stowage(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PLUGIN_MAIN, ...args], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NODE_NO_WARNINGS: '1', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x', STOWAGE_CLUSTER: CLUSTER, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function createVolume(ec2: EC2Client, zone: string, name: string, generation = 1): Promise<string> {
  const out = await ec2.send(
    new CreateVolumeCommand({
      AvailabilityZone: zone, Size: 1, VolumeType: 'gp3',
      TagSpecifications: [{
        ResourceType: 'volume',
        Tags: [
          { Key: 'stowage:cluster', Value: CLUSTER }, { Key: 'stowage:volume', Value: name },
          { Key: 'stowage:backing', Value: 'relocatable' }, { Key: 'stowage:generation', Value: String(generation) },
          { Key: 'stowage:fs', Value: 'ext4' },
        ],
      }],
    }),
  );
  return out.VolumeId!;
}

/** A snapshot as the plugin takes one to move a volume (reason `move`), or as an operator does. */
async function snapshotOf(ec2: EC2Client, volumeId: string, name: string, reason = 'move'): Promise<string> {
  const out = await ec2.send(new CreateSnapshotCommand({
    VolumeId: volumeId,
    TagSpecifications: [{ ResourceType: 'snapshot', Tags: [{ Key: 'stowage:cluster', Value: CLUSTER }, { Key: 'stowage:volume', Value: name }, { Key: 'stowage:snapshot-reason', Value: reason }] }],
  }));
  return out.SnapshotId!;
}

async function volumesNamed(ec2: EC2Client, name: string) {
  const out = await ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'tag:stowage:volume', Values: [name] }] }));
  return (out.Volumes ?? []).filter((v) => v.State !== 'deleted');
}

async function snapshotsNamed(ec2: EC2Client, name: string) {
  const out = await ec2.send(new DescribeSnapshotsCommand({ Filters: [{ Name: 'tag:stowage:volume', Values: [name] }] }));
  return out.Snapshots ?? [];
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('stowage operator commands against localcloud in two regions', () => {
  let east: TestCloud;
  let west: TestCloud;
  let endpoints: string[];

  beforeAll(async () => {
    east = await startTestCloud({ region: 'us-east-1' });
    west = await startTestCloud({ region: 'eu-west-1' });
    endpoints = ['--endpoint', `us-east-1=${east.lc.url}`, '--endpoint', `eu-west-1=${west.lc.url}`];
  });

  afterAll(async () => {
    await Promise.all([east?.close(), west?.close()]);
  });

  test('ls shows the volumes of both regions, and only those of the cluster', async () => {
    await createVolume(east.ec2, 'us-east-1a', 'ls-east');
    await createVolume(west.ec2, 'eu-west-1b', 'ls-west');
    await east.ec2.send(new CreateVolumeCommand({ AvailabilityZone: 'us-east-1a', Size: 1 })); // not ours

    const json = await stowage(['ls', ...endpoints, '--json']);
    expect(json.stderr).toBe('');
    expect(json.code).toBe(0);
    const listed = JSON.parse(json.stdout) as { regions: string[]; volumes: { name: string; region: string; zone: string; backing: string; generation: number }[] };
    expect(listed.regions.sort()).toEqual(['eu-west-1', 'us-east-1']);
    expect(listed.volumes.filter((v) => v.name.startsWith('ls-'))).toEqual([
      expect.objectContaining({ name: 'ls-east', region: 'us-east-1', zone: 'us-east-1a', backing: 'relocatable', generation: 1 }),
      expect.objectContaining({ name: 'ls-west', region: 'eu-west-1', zone: 'eu-west-1b', backing: 'relocatable', generation: 1 }),
    ]);

    const text = await stowage(['ls', ...endpoints]);
    expect(text.code).toBe(0);
    expect(text.stdout.split('\n')[0]).toMatch(/^NAME\s+BACKING\s+REGION\s+ZONE/);
    expect(text.stdout).toMatch(/ls-west\s+relocatable\s+eu-west-1\s+eu-west-1b\s+1G\s+gp3\s+available/);

    // --region narrows to one region even when endpoints name two.
    const one = await stowage(['ls', ...endpoints, '--region', 'eu-west-1', '--json']);
    expect((JSON.parse(one.stdout) as { volumes: { region: string }[] }).volumes.every((v) => v.region === 'eu-west-1')).toBe(true);
  });

  test('snapshot takes a tagged snapshot; inspect shows it with the volume and its history', async () => {
    const id = await createVolume(west.ec2, 'eu-west-1a', 'snap-me');
    const taken = await stowage(['snapshot', 'snap-me', ...endpoints, '--wait', '--json']);
    expect(taken.code).toBe(0);
    const { snapshotId, state, region } = JSON.parse(taken.stdout) as { snapshotId: string; state: string; region: string };
    expect([state, region]).toEqual(['completed', 'eu-west-1']);
    expect(taken.stderr).toMatch(new RegExp(`snapshot ${snapshotId} \\[#+\\] 100%`));

    const inAws = await snapshotsNamed(west.ec2, 'snap-me');
    expect(inAws.map((s) => s.SnapshotId)).toEqual([snapshotId]);
    const tags = Object.fromEntries(inAws[0]!.Tags!.map((t) => [t.Key, t.Value]));
    expect(tags).toMatchObject({ 'stowage:cluster': CLUSTER, 'stowage:volume': 'snap-me', 'stowage:generation': '1', 'stowage:source-volume': id, 'stowage:snapshot-reason': 'operator' });
    expect(await snapshotsNamed(east.ec2, 'snap-me')).toEqual([]);

    const inspected = await stowage(['inspect', 'snap-me', ...endpoints, '--json']);
    expect(inspected.code).toBe(0);
    const view = JSON.parse(inspected.stdout) as { region: string; current: { id: string }; snapshots: { id: string }[]; history: { what: string }[] };
    expect(view.region).toBe('eu-west-1');
    expect(view.current.id).toBe(id);
    expect(view.snapshots.map((s) => s.id)).toEqual([snapshotId]);
    expect(view.history.map((e) => e.what)).toEqual([
      expect.stringContaining(`generation 1 created in eu-west-1a as ${id}`),
      expect.stringContaining(`snapshot ${snapshotId} of generation 1 (${id}, operator)`),
    ]);
    const text = await stowage(['inspect', 'snap-me', ...endpoints]);
    expect(text.stdout).toContain(`Volume:    ${id} (available)`);
  });

  test('a missing volume exits 3, a bad command line 2, both saying why', async () => {
    const missing = await stowage(['inspect', 'nowhere', ...endpoints]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/volume nowhere does not exist.*cluster=ops-it.*regions=us-east-1,eu-west-1/);
    const bad = await stowage(['relocate', 'x', '--to-zone', 'mars-1a', ...endpoints]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--to-zone "mars-1a" is not an availability zone');
    const unknown = await stowage(['gc', '--aply', ...endpoints]);
    expect([unknown.code, unknown.stderr.split('\n')[0]]).toEqual([2, 'stowage gc: unknown flag --aply']);
  });

  test('gc lists superseded volumes and snapshots beyond retention, changes nothing, then removes them with --apply', async () => {
    const old = await createVolume(east.ec2, 'us-east-1a', 'gc-me', 1);
    const current = await createVolume(east.ec2, 'us-east-1b', 'gc-me', 2);
    await until('volumes available', async () => (await volumesNamed(east.ec2, 'gc-me')).every((v) => v.State === 'available'));
    // An operator's backup, older than all: the one retention policy never deletes it.
    const backup = await snapshotOf(east.ec2, current, 'gc-me', 'operator');
    await new Promise((r) => setTimeout(r, 1100));
    const snaps: string[] = [];
    for (let i = 0; i < 3; i++) {
      snaps.push(await snapshotOf(east.ec2, current, 'gc-me'));
      await new Promise((r) => setTimeout(r, 1100)); // distinct start times, to the second
    }
    await until('snapshots completed', async () => (await snapshotsNamed(east.ec2, 'gc-me')).every((s) => s.State === 'completed'));

    const dry = await stowage(['gc', ...endpoints, '--json']);
    expect(dry.code).toBe(0);
    const plan = JSON.parse(dry.stdout) as { applied: boolean; actions: { kind: string; id: string; name: string }[] };
    const mine = plan.actions.filter((a) => a.name === 'gc-me');
    expect(plan.applied).toBe(false);
    expect(mine.map((a) => [a.kind, a.id]).sort()).toEqual(
      [['delete-volume', old], ['delete-snapshot', snaps[0]], ['delete-snapshot', snaps[1]]].sort(),
    );
    expect((await volumesNamed(east.ec2, 'gc-me')).length).toBe(2);
    expect((await snapshotsNamed(east.ec2, 'gc-me')).length).toBe(4);
    const dryText = await stowage(['gc', ...endpoints]);
    expect(dryText.stdout).toMatch(new RegExp(`would\\s+delete-volume\\s+us-east-1\\s+gc-me\\s+${old}\\s+superseded`));
    expect(dryText.stdout).toContain('dry run: nothing was changed');

    const applied = await stowage(['gc', ...endpoints, '--apply']);
    expect(applied.code).toBe(0);
    expect(applied.stdout).toMatch(new RegExp(`done\\s+delete-volume\\s+us-east-1\\s+gc-me\\s+${old}`));
    expect((await volumesNamed(east.ec2, 'gc-me')).map((v) => v.VolumeId)).toEqual([current]);
    expect((await snapshotsNamed(east.ec2, 'gc-me')).map((s) => s.SnapshotId).sort()).toEqual([backup, snaps[2]].sort());

    const again = await stowage(['gc', ...endpoints, '--json']);
    expect((JSON.parse(again.stdout) as { actions: { name: string }[] }).actions.filter((a) => a.name === 'gc-me')).toEqual([]);
  });

  test('relocate moves a detached volume to another zone, printing progress, and AWS then holds one volume there', async () => {
    const before = await createVolume(east.ec2, 'us-east-1a', 'move-me');
    await until('volume available', async () => (await volumesNamed(east.ec2, 'move-me'))[0]?.State === 'available');
    const moved = await stowage(['relocate', 'move-me', '--to-zone', 'us-east-1c', ...endpoints, '--json']);
    expect(moved.code).toBe(0);
    expect(moved.stderr).toMatch(/move-me us-east-1a → us-east-1c: snapshot \[[#.]+\]\s+\d+%/);
    const result = JSON.parse(moved.stdout) as { from: string; to: string; volumeId: string; previousVolumeId: string; generation: number };
    expect(result).toMatchObject({ from: 'us-east-1a', to: 'us-east-1c', previousVolumeId: before, generation: 2 });
    const now = await volumesNamed(east.ec2, 'move-me');
    expect(now.map((v) => [v.VolumeId, v.AvailabilityZone])).toEqual([[result.volumeId, 'us-east-1c']]);

    // Already there: nothing to do, same volume.
    const again = await stowage(['relocate', 'move-me', '--to-zone', 'us-east-1c', ...endpoints, '--json']);
    expect(again.code).toBe(0);
    expect((JSON.parse(again.stdout) as { volumeId: string }).volumeId).toBe(result.volumeId);
  });
});
