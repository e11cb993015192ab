/**
 * The plugin as dockerd's client: a private dockerd finds the plugin process by its socket under
 * /run/docker/plugins and drives the whole volume protocol through the docker CLI, on relocatable
 * (EBS) volumes of an emulated instance on localcloud: real loop devices, mkfs and mount.
 */
import { DescribeVolumesCommand } from '@aws-sdk/client-ec2';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { readMountinfo } from '../../host/mountinfo.js';
import { loopsUnder } from '../integration/localcloud/helpers.js';
import { eventually, startDockerNode, type DockerNode } from '../helpers/docker-on-localcloud.js';

let node: DockerNode;

beforeAll(async () => {
  node = await startDockerNode('volume');
});
afterAll(async () => {
  await node?.close();
});

const MOUNTED = 'first reference taken; volume mounted';
const UNMOUNTED = 'last reference released; volume unmounted';

async function create(name: string, ...opts: string[]): Promise<void> {
  await node.docker(['volume', 'create', '-d', node.pluginName.name, ...opts.flatMap((o) => ['--opt', o]), name]);
}

async function inspect(name: string): Promise<{ Driver: string; Scope: string; CreatedAt: string; Status: Record<string, unknown> }> {
  return (JSON.parse(await node.docker(['volume', 'inspect', name])) as Array<never>)[0]!;
}

async function ebsVolumes(name: string) {
  const out = await node.cloud.ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'tag:stowage:volume', Values: [name] }] }));
  return out.Volumes ?? [];
}

/** A running container that keeps the volume mounted; returns its id. */
async function holdWithContainer(volume: string): Promise<string> {
  return (await node.docker(['run', '-d', '--network', 'none', '-v', `${volume}:/data`, node.image, 'sleep', '60'])).trim();
}

async function mounted(name: string): Promise<boolean> {
  const target = path.join(node.mountRoot, name);
  return (await readMountinfo()).some((m) => m.target === target);
}

test('docker volume create makes one tagged EBS volume with the options given', async () => {
  await create('v1', 'size=1', 'ebstype=gp3', 'fs=xfs');
  const [volume, ...others] = await ebsVolumes('v1');
  expect(others).toEqual([]);
  expect(volume).toMatchObject({ Size: 1, VolumeType: 'gp3', AvailabilityZone: node.zone, State: 'available' });
  expect(volume!.Tags).toEqual(expect.arrayContaining([{ Key: 'stowage:backing', Value: 'relocatable' }, { Key: 'stowage:cluster', Value: 'default' }]));
});

test.each([
  ['size=abc', 'invalid option size="abc"'],
  ['bogus=1', 'invalid option bogus="1"'],
  ['ebstype=st1', 'invalid option size="10"'],
  ['mountopts=nobarrier', 'invalid option mountopts="nobarrier"'],
])('docker volume create --opt %s fails with our message and creates nothing', async (opt, message) => {
  const name = `bad-${opt.split('=')[0]}`;
  const r = await node.dockerd.docker(['volume', 'create', '-d', node.pluginName.name, '--opt', opt, name], { allowFailure: true });
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain(message);
  expect(await ebsVolumes(name)).toEqual([]);
});

test('docker volume inspect shows the driver, the scope and our Status', async () => {
  await create('inspected', 'size=2');
  const info = await inspect('inspected');
  expect(info.Driver).toBe(node.pluginName.name);
  expect(info.Scope).toBe('global');
  expect(Number.isNaN(Date.parse(info.CreatedAt))).toBe(false);
  expect(info.Status).toMatchObject({ backing: 'relocatable', size: 2, type: 'gp3', zone: node.zone, state: 'available', generation: 1 });
  expect(String(info.Status.volumeId)).toMatch(/^vol-/);
});

test('docker volume ls lists the plugin\'s volumes', async () => {
  await create('listed');
  const out = await node.docker(['volume', 'ls', '--format', '{{.Driver}} {{.Name}}']);
  expect(out.split('\n')).toContain(`${node.pluginName.name} listed`);
});

test('a file written by one container is read back by the next, through attach, mkfs and mount', async () => {
  await create('data', 'size=1');
  const run = ['run', '--rm', '--network', 'none', '-v', 'data:/data', node.image];
  await node.docker([...run, 'sh', '-c', 'echo written-by-first > /data/note']);
  await eventually(() => node.plugin.count('data', UNMOUNTED) === 1, 'the first container to unmount');
  // Detached between the two containers: the second one finds the filesystem, it does not format again.
  expect((await ebsVolumes('data'))[0]!.State).toBe('available');
  expect(await node.docker([...run, 'cat', '/data/note'])).toBe('written-by-first\n');
  await eventually(() => node.plugin.count('data', UNMOUNTED) === 2, 'the second container to unmount');
  expect(node.plugin.lines().filter((l) => l.volume === 'data' && l.msg === 'blank device: formatting')).toHaveLength(1);
});

test('two containers mount the volume at once: one attach and mount, one unmount and detach', async () => {
  await create('together', 'size=1');
  const first = await holdWithContainer('together');
  const second = await holdWithContainer('together');
  expect(await node.docker(['inspect', '--format', '{{.State.Running}}', first, second])).toBe('true\ntrue\n');
  expect(node.plugin.count('together', MOUNTED)).toBe(1);
  expect((await inspect('together')).Status).toMatchObject({ references: 2, mountedHere: true, state: 'in-use' });

  await node.docker(['rm', '-f', first]);
  await eventually(async () => (await inspect('together')).Status.references === 1, 'the first container to unmount');
  expect(await mounted('together')).toBe(true);
  expect(node.plugin.count('together', UNMOUNTED)).toBe(0);

  await node.docker(['rm', '-f', second]);
  await eventually(() => node.plugin.count('together', UNMOUNTED) === 1, 'the last container to unmount');
  expect(await mounted('together')).toBe(false);
  expect((await ebsVolumes('together'))[0]!.State).toBe('available');
});

test('docker volume rm refuses a volume in use, then deletes the EBS volume', async () => {
  await create('removed', 'size=1');
  const holder = await holdWithContainer('removed');
  const refused = await node.dockerd.docker(['volume', 'rm', 'removed'], { allowFailure: true });
  expect(refused.code).not.toBe(0);
  expect(refused.stderr).toContain('in use');
  await node.docker(['rm', '-f', holder]);
  await eventually(() => node.plugin.count('removed', UNMOUNTED) === 1, 'the container to unmount');
  await node.docker(['volume', 'rm', 'removed']);
  expect(await ebsVolumes('removed')).toEqual([]);
  expect(await node.docker(['volume', 'ls', '--format', '{{.Name}}'])).not.toContain('removed');
});

test('refcounts survive kill -9 of the plugin and a restart', async () => {
  await create('survivor', 'size=1');
  const first = await holdWithContainer('survivor');
  const second = await holdWithContainer('survivor');
  const state = JSON.parse(await readFile(path.join(path.dirname(node.mountRoot), 'state', 'mounts.json'), 'utf8')) as {
    volumes: Record<string, { ids: string[] }>;
  };
  expect(state.volumes.survivor!.ids).toHaveLength(2);

  await node.plugin.crash();
  await node.plugin.restart();
  expect((await inspect('survivor')).Status).toMatchObject({ references: 2 });

  await node.docker(['rm', '-f', first]);
  await eventually(async () => (await inspect('survivor')).Status.references === 1, 'the first container to unmount');
  expect(await mounted('survivor')).toBe(true);
  await node.docker(['rm', '-f', second]);
  await eventually(() => node.plugin.count('survivor', UNMOUNTED) === 1, 'the last container to unmount');
  expect(await mounted('survivor')).toBe(false);
  const [volume] = await ebsVolumes('survivor');
  expect(volume!.State).toBe('available');
  expect(loopsUnder(node.cloud.dir).filter((l) => l.includes(volume!.VolumeId!))).toEqual([]);
});
