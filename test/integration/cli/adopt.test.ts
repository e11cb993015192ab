/**
 * `stowage adopt` against localcloud with real loop devices: a volume made with the plain SDK,
 * formatted and written outside Stowage, adopted with its data intact and never formatted; the
 * refusals, each before anything is written; and the volumes Cloudstor and REX-Ray tagged.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AttachVolumeCommand, CreateVolumeCommand, DescribeVolumesCommand, DetachVolumeCommand, RunInstancesCommand, type Volume } from '@aws-sdk/client-ec2';
import { adoptCommand } from '../../../cli/ops/adopt.js';
import { createLinuxHost } from '../../../host/linux-host.js';
import { parseOptions } from '../../../plugin/options/parse.js';
import { asRoot } from '../../helpers/as-root.js';
import { CLUSTER, ctx, startEbsWorld, until, type EbsWorld } from '../ebs/ebs-world.js';
import { runOps } from '../../helpers/run-ops.js';

const ZONE = 'us-east-1a';
/** Nothing listens there: off a node, IMDS fails at once instead of timing out. */
const NO_IMDS = { AWS_EC2_METADATA_SERVICE_ENDPOINT: 'http://127.0.0.1:9/' };

asRoot('stowage adopt', () => {
  let world: EbsWorld;
  let scratch: string;

  // The command's clients take credentials from the SDK's default chain, which reads process.env.
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };

  beforeAll(async () => {
    process.env.AWS_ACCESS_KEY_ID = 'x';
    process.env.AWS_SECRET_ACCESS_KEY = 'x';
    world = await startEbsWorld('adopt');
    scratch = await mkdtemp(path.join(os.tmpdir(), 'stowage-adopt-mnt-'));
  });

  afterAll(async () => {
    for (const [key, value] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret]] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    await world?.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  async function adopt(args: string[], env: Record<string, string> = NO_IMDS) {
    const { code, stdout, stderr } = await runOps(adoptCommand, [...args, '--endpoint', world.lc.url, '--region', world.lc.region, '--json'], { STOWAGE_CLUSTER: CLUSTER, ...env });
    return { code, stdout, stderr, json: () => JSON.parse(stdout) as { adopted: { volumeId: string; name: string; fs: string; how: string; already: boolean }[]; failed: { name: string; error: string }[] } };
  }

  const onNode = (instanceId: string) => ({ STOWAGE_INSTANCE_ID: instanceId, STOWAGE_AZ: ZONE, STOWAGE_DEVICE_DIR: world.lc.deviceDir(instanceId) });

  async function describe(id: string): Promise<Volume> {
    return (await world.ec2.send(new DescribeVolumesCommand({ VolumeIds: [id] }))).Volumes![0]!;
  }
  const tagsOf = async (id: string) => Object.fromEntries((await describe(id)).Tags?.map((t) => [t.Key, t.Value]) ?? []);

  async function instance(tags: Record<string, string> = {}): Promise<string> {
    const out = await world.ec2.send(new RunInstancesCommand({
      MinCount: 1, MaxCount: 1, ImageId: 'ami-12345678', Placement: { AvailabilityZone: ZONE },
      ...(Object.keys(tags).length > 0 && { TagSpecifications: [{ ResourceType: 'instance', Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }] }),
    }));
    return out.Instances![0]!.InstanceId!;
  }

  /** A volume as someone made it by hand: the plain SDK, any tags they like. */
  async function handMade(tags: Record<string, string> = {}): Promise<string> {
    const out = await world.ec2.send(new CreateVolumeCommand({
      AvailabilityZone: ZONE, Size: 1, VolumeType: 'gp3',
      ...(Object.keys(tags).length > 0 && { TagSpecifications: [{ ResourceType: 'volume', Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }] }),
    }));
    const id = out.VolumeId!;
    await until(`${id} available`, async () => (await describe(id)).State === 'available');
    return id;
  }

  async function attach(id: string, instanceId: string): Promise<string> {
    await until(`${instanceId} running`, async () => {
      try {
        await world.ec2.send(new AttachVolumeCommand({ VolumeId: id, InstanceId: instanceId, Device: '/dev/xvdf' }));
        return true;
      } catch (err) {
        if ((err as { name?: string }).name === 'IncorrectInstanceState') return false;
        throw err;
      }
    });
    const host = createLinuxHost({ deviceDir: world.lc.deviceDir(instanceId) });
    let device: string | undefined;
    await until(`${id} device on ${instanceId}`, async () => (device = await host.findDevice(id)) !== undefined);
    return device!;
  }

  async function detach(id: string): Promise<void> {
    await world.ec2.send(new DetachVolumeCommand({ VolumeId: id }));
    await until(`${id} detached`, async () => (await describe(id)).State === 'available');
  }

  /** mkfs and a file written through the loop device on an instance outside the cluster, then detached. */
  async function formattedAndWritten(fs: 'ext4' | 'xfs', content: string): Promise<{ id: string; uuid: string }> {
    const id = await handMade({ Name: 'made by hand' });
    const outsider = await instance();
    const device = await attach(id, outsider);
    execFileSync(`mkfs.${fs}`, ['-q', device]);
    const target = await mkdtemp(path.join(scratch, 'w-'));
    execFileSync('mount', [device, target]);
    try {
      await writeFile(path.join(target, 'data.txt'), content);
    } finally {
      execFileSync('umount', [target]);
    }
    const uuid = execFileSync('blkid', ['-p', '-s', 'UUID', '-o', 'value', device], { encoding: 'utf8' }).trim();
    await detach(id);
    return { id, uuid };
  }

  test('a volume formatted and written outside Stowage: its filesystem read on this node, tagged, then mounted by the driver with its data', async () => {
    const { id, uuid } = await formattedAndWritten('ext4', 'rows written before Stowage');
    const node = await world.startNode(ZONE);

    const out = await adopt([id, '--name', 'handmade-db'], onNode(node.instanceId));
    expect([out.code, out.stderr]).toEqual([0, expect.stringContaining(`attaching to this node (${node.instanceId})`)]);
    expect(out.json().adopted).toEqual([expect.objectContaining({ volumeId: id, name: 'handmade-db', fs: 'ext4', how: `read with blkid on ${node.instanceId}`, already: false })]);
    const tags = await tagsOf(id);
    expect(tags).toMatchObject({
      'stowage:cluster': CLUSTER, 'stowage:volume': 'handmade-db', 'stowage:backing': 'relocatable', 'stowage:generation': '1',
      'stowage:fs': 'ext4', 'stowage:formatted': 'true', Name: 'made by hand',
    });
    expect((await describe(id)).State).toBe('available'); // detached again after the read

    // The same command again changes nothing.
    const again = await adopt([id, '--name', 'handmade-db'], onNode(node.instanceId));
    expect([again.code, again.json().adopted[0]?.already]).toEqual([0, true]);

    const mountpoint = await node.driver.mount('handmade-db', ctx('handmade-db'));
    try {
      expect(await readFile(path.join(mountpoint, 'data.txt'), 'utf8')).toBe('rows written before Stowage');
      const device = (await node.host.mountAt(mountpoint))!.source;
      expect(execFileSync('blkid', ['-p', '-s', 'UUID', '-o', 'value', device], { encoding: 'utf8' }).trim()).toBe(uuid);
    } finally {
      await node.driver.unmount('handmade-db', ctx('handmade-db'));
    }
  });

  test('off a node --fs is required and said so; a volume adopted as formatted is never formatted, even when it is blank', async () => {
    const blank = await handMade();
    const refused = await adopt([blank, '--name', 'blank-one']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`cannot read the filesystem of ${blank} from here: this machine is not an EC2 instance`);
    expect(refused.stderr).toContain('or pass --fs ext4|xfs');
    expect(await tagsOf(blank)).toEqual({});

    const out = await adopt([blank, '--name', 'blank-one', '--fs', 'xfs']);
    expect(out.code).toBe(0);
    expect(out.json().adopted[0]).toMatchObject({ fs: 'xfs', how: expect.stringMatching(/^from --fs, not read/) });

    const node = world.nodes[0] ?? (await world.startNode(ZONE));
    await expect(node.driver.mount('blank-one', ctx('blank-one'))).rejects.toThrow(/shows no filesystem, but it was formatted before; refusing to format it/);
    const device = await node.host.findDevice(blank);
    // blkid -p exits 2 when it finds no signature: mkfs never ran.
    expect(() => execFileSync('blkid', ['-p', device!], { stdio: 'pipe' })).toThrow(expect.objectContaining({ status: 2 }));
  });

  test('refused before anything is written: attached outside the cluster, another cluster\'s, a name the cluster has', async () => {
    const node = world.nodes[0] ?? (await world.startNode(ZONE));
    const outside = await handMade();
    const outsider = await instance();
    await attach(outside, outsider);
    const attached = await adopt([outside, '--name', 'outside-one', '--fs', 'ext4']);
    expect(attached.code).toBe(4);
    expect(attached.stderr).toContain(`${outside} is attached to instance ${outsider}, which carries no stowage:cluster tag: it is in use outside cluster ${CLUSTER}`);
    expect(await tagsOf(outside)).toEqual({});

    const theirs = await handMade({ 'stowage:cluster': 'other', 'stowage:volume': 'db' });
    const claimed = await adopt([theirs, '--name', 'theirs-one', '--fs', 'ext4']);
    expect(claimed.code).toBe(4);
    expect(claimed.stderr).toContain(`${theirs} belongs to cluster other (stowage:cluster=other), not ${CLUSTER}`);
    expect(await tagsOf(theirs)).toEqual({ 'stowage:cluster': 'other', 'stowage:volume': 'db' });

    await node.driver.create('taken-name', parseOptions({ backing: 'relocatable', size: '1' }, 'relocatable').options, ctx('taken-name'));
    const holder = (await world.volumesNamed('taken-name'))[0]!.VolumeId!;
    const free = await handMade();
    const taken = await adopt([free, '--name', 'taken-name', '--fs', 'ext4']);
    expect(taken.code).toBe(4);
    expect(taken.stderr).toContain(`name taken-name is taken in cluster ${CLUSTER} by ${holder} in ${ZONE}; adopt ${free} under another --name`);
    expect(await tagsOf(free)).toEqual({});

    // Attached to an instance of this cluster is not "outside": that one is adopted.
    const inside = await handMade();
    await attach(inside, await instance({ 'stowage:cluster': CLUSTER }));
    const ours = await adopt([inside, '--name', 'inside-one', '--fs', 'ext4']);
    expect([ours.code, ours.json().adopted[0]?.name]).toEqual([0, 'inside-one']);
  });

  test('--from cloudstor adopts the volumes Cloudstor tagged under their names, one stack at a time; --from rexray those of REX-Ray', async () => {
    const stack = (id: string) => createHash('md5').update(id).digest('hex');
    const a = await handMade({ CloudstorVolumeName: 'cs-app_db', StackID: stack('swarm-1') });
    const b = await handMade({ CloudstorVolumeName: 'cs-app_cache', StackID: stack('swarm-1') });
    const c = await handMade({ CloudstorVolumeName: 'cs-other_db', StackID: stack('swarm-2') });
    const unrelated = await handMade({ Name: 'cs-app_db' });

    const first = await adopt(['--from', 'cloudstor', '--stack-id', 'swarm-1', '--fs', 'ext4']);
    expect(first.code).toBe(0);
    expect(first.json().adopted.map((x) => [x.name, x.volumeId]).sort()).toEqual([['cs-app_cache', b], ['cs-app_db', a]]);
    for (const [id, name] of [[a, 'cs-app_db'], [b, 'cs-app_cache']] as const) {
      expect(await tagsOf(id)).toMatchObject({ 'stowage:cluster': CLUSTER, 'stowage:volume': name, 'stowage:formatted': 'true', CloudstorVolumeName: name });
    }
    expect(await tagsOf(c)).toEqual({ CloudstorVolumeName: 'cs-other_db', StackID: stack('swarm-2') });

    const all = await adopt(['--from', 'cloudstor', '--fs', 'ext4']);
    expect(all.code).toBe(0);
    expect(all.json().adopted.map((x) => [x.name, x.already]).sort()).toEqual([['cs-app_cache', true], ['cs-app_db', true], ['cs-other_db', false]]);
    expect(await tagsOf(unrelated)).toEqual({ Name: 'cs-app_db' });

    const rr = await handMade({ Name: 'rr-data', rexraySet: 'rexray' });
    const rexray = await adopt(['--from', 'rexray', '--rexray-tag', 'rexray', '--fs', 'ext4']);
    expect([rexray.code, rexray.json().adopted.map((x) => [x.name, x.volumeId])]).toEqual([0, [['rr-data', rr]]]);
  });
});
