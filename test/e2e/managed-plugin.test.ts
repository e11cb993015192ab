/**
 * Stowage as operators run it: a managed plugin made from config.json and a root filesystem by
 * scripts/build-plugin.sh, enabled by a real dockerd, serving a container round trip against a
 * localcloud started here. dockerd itself is what proves config.json (interface, socket, host
 * network, PropagatedMount, capabilities, devices, mounts, settable env), not a reading of it.
 *
 * No registry is reachable here, so the rootfs is assembled from this machine's files by
 * scripts/assemble-rootfs.sh, into the test's scratch folder (node, the bundle and the tools, gone with it).
 *
 * The managed plugin runs on AWS only (localcloud is a development tool, issue 16): it meets the
 * test's localcloud as it would any AWS endpoint, through AWS_ENDPOINT_URL, with credentials from
 * the default chain (a credentials file in the test's rootfs), and finds the emulated devices
 * through STOWAGE_DEVICE_DIR: the test's localcloud lives in `<state source>/localcloud`, which
 * the plugin sees as /var/lib/stowage/localcloud (docs/operators.md).
 */
import { DescribeVolumesCommand, EC2Client, RunInstancesCommand, type Volume } from '@aws-sdk/client-ec2';
import { mkdir, readdir, readlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MountEntry } from '../../host/host.js';
import { readMountinfo } from '../../host/mountinfo.js';
import { startLocalcloud, type Localcloud } from '../../localcloud/index.js';
import { loopsUnder } from '../integration/localcloud/helpers.js';
import { importBusybox } from '../helpers/busybox-image.js';
import { DOCKER, startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { removeTree, scratchDir } from '../helpers/owned-dir.js';
import { eventually } from '../helpers/docker-on-localcloud.js';
import { run } from '../helpers/run.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PLUGIN = 'stowage/aws';
/** Where config.json's state mount puts the plugin's state, and so the localcloud inside it. */
const PLUGIN_STATE_DIR = '/var/lib/stowage';
/** What the plugin logs when the last container lets go of a volume. */
const UNMOUNTED = 'last reference released; volume unmounted';
const CREDENTIALS = { accessKeyId: 'localcloud', secretAccessKey: 'localcloud' };

let tmp: string | undefined;
let lc: Localcloud | undefined;
let ec2: EC2Client | undefined;
let d: Dockerd | undefined;
let image: string;
let instanceId: string;
let zone: string;

/** The docker CLI on the private daemon; a failure carries the CLI's stderr and dockerd's log (with the plugin's lines). */
async function docker(args: string[], timeoutMs = 150_000): Promise<string> {
  const r = await d!.docker(args, { allowFailure: true, timeoutMs });
  if (r.code !== 0) {
    throw new Error(`docker ${args.join(' ')} failed (${r.code}): ${r.stderr}\n--- dockerd log tail ---\n${d!.logs().slice(-8000)}`);
  }
  return r.stdout;
}

/** Where scripts/build-plugin.sh finds the private daemon. */
function clientEnv(): NodeJS.ProcessEnv {
  return { ...process.env, DOCKER, DOCKER_HOST: `unix://${d!.socket}`, DOCKER_CONFIG: path.join(d!.baseDir, 'client') };
}

/** The plugin's own JSON log lines, which dockerd relays into its log with the plugin's id. */
function pluginLines(): { msg?: string; volume?: string }[] {
  return d!.logs().split('\n').flatMap((line) => {
    const json = /msg="(\{.*\})"/.exec(line)?.[1];
    if (json === undefined) return [];
    try {
      return [JSON.parse(json.replace(/\\"/g, '"')) as { msg?: string; volume?: string }];
    } catch {
      return [];
    }
  });
}

/**
 * The volumes dockerd lists for this plugin (by its full reference). dockerd also asks the socket
 * plugins other test runs leave in /run/docker/plugins, so the whole list is not ours.
 */
async function ourVolumes(): Promise<string[]> {
  const lines = (await docker(['volume', 'ls', '--format', '{{.Driver}} {{.Name}}'])).split('\n');
  return lines.filter((l) => l.startsWith(`${PLUGIN}:latest `)).map((l) => l.split(' ')[1]!);
}

async function ebsVolumes(name: string): Promise<Volume[]> {
  const out = await ec2!.send(new DescribeVolumesCommand({ Filters: [{ Name: 'tag:stowage:volume', Values: [name] }] }));
  return out.Volumes ?? [];
}

/** Volumes (loop devices of the test's localcloud) mounted on the host under the daemon's plugins. */
async function volumeMounts(): Promise<MountEntry[]> {
  return (await readMountinfo()).filter((m) => m.target.startsWith(`${d!.dataRoot}/plugins/`) && m.source.startsWith('/dev/loop'));
}

/** Processes whose root directory lies under dir: a plugin that outlived its disable. */
async function processesRootedUnder(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const root = await readlink(`/proc/${entry}/root`).catch(() => '');
    if (root.startsWith(dir + '/')) pids.push(Number(entry));
  }
  return pids;
}

beforeAll(async () => {
  tmp = await scratchDir('managed-plugin');
  const rootfs = path.join(tmp, 'rootfs');
  await run(path.join(REPO, 'scripts/assemble-rootfs.sh'), [rootfs], { timeoutMs: 300_000 });
  // The SDK's default chain reads ~/.aws/credentials; a plugin gets no HOME, so root's home comes from passwd.
  await writeFile(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  await mkdir(path.join(rootfs, 'root/.aws'), { recursive: true });
  await writeFile(path.join(rootfs, 'root/.aws/credentials'), `[default]\naws_access_key_id = ${CREDENTIALS.accessKeyId}\naws_secret_access_key = ${CREDENTIALS.secretAccessKey}\n`);
  lc = await startLocalcloud({ dir: path.join(tmp, 'state', 'localcloud') });
  ec2 = new EC2Client({ endpoint: lc.url, region: lc.region, credentials: CREDENTIALS, maxAttempts: 1 });
  zone = lc.zones[0]!;
  const started = await ec2.send(new RunInstancesCommand({ MinCount: 1, MaxCount: 1, ImageId: 'ami-12345678', Placement: { AvailabilityZone: zone } }));
  instanceId = started.Instances![0]!.InstanceId!;

  d = await startDockerd({ name: 'managed' });
  image = await importBusybox(d);
  await run(path.join(REPO, 'scripts/build-plugin.sh'), ['--rootfs', rootfs, '--name', PLUGIN], {
    env: clientEnv(),
    timeoutMs: 300_000,
  });
}, 600_000);

afterAll(async () => {
  try {
    if (d) {
      await d.docker(['plugin', 'disable', '-f', PLUGIN], { allowFailure: true, timeoutMs: 60_000 });
      await d.docker(['plugin', 'rm', '-f', PLUGIN], { allowFailure: true, timeoutMs: 60_000 });
      // A plugin that outlived its disable would keep its volume mounted and the loop device busy.
      for (const pid of await processesRootedUnder(d.dataRoot)) process.kill(pid, 'SIGKILL');
    }
  } finally {
    try {
      await d?.stop();
    } finally {
      ec2?.destroy();
      // After dockerd's sweep has unmounted what the plugin propagated: the loop devices are free.
      await lc?.stop({ release: true });
      if (tmp) await removeTree(tmp);
    }
  }
}, 180_000);

test('enable names the state folder when it is missing on the host', async () => {
  const missing = path.join(tmp!, 'not-made-yet');
  await docker(['plugin', 'set', PLUGIN, `state.source=${missing}`]);
  const noFolder = await d!.docker(['plugin', 'enable', PLUGIN], { allowFailure: true, timeoutMs: 120_000 });
  expect(noFolder.code).not.toBe(0);
  expect(noFolder.stderr).toContain(missing);
  expect(JSON.parse(await docker(['plugin', 'inspect', '--format', '{{json .Enabled}}', PLUGIN]))).toBe(false);
}, 300_000);

test('dockerd enables the plugin from config.json and keeps the settings it was given', async () => {
  await docker([
    'plugin', 'set', PLUGIN,
    `state.source=${path.join(tmp!, 'state')}`,
    // Host networking: the plugin reaches the test's localcloud on 127.0.0.1.
    `AWS_ENDPOINT_URL=${lc!.url}`,
    `AWS_REGION=${lc!.region}`,
    `STOWAGE_DEVICE_DIR=${PLUGIN_STATE_DIR}/localcloud/devices/${instanceId}`,
    `STOWAGE_INSTANCE_ID=${instanceId}`,
    `STOWAGE_AZ=${zone}`,
    'STOWAGE_DEFAULT_BACKING=relocatable',
    'STOWAGE_LOG_LEVEL=debug',
    'STOWAGE_MOUNT_TIMEOUT=100s',
  ]);
  await docker(['plugin', 'enable', '--timeout', '120', PLUGIN]);
  const [plugin] = JSON.parse(await docker(['plugin', 'inspect', PLUGIN])) as {
    Enabled: boolean;
    Settings: { Env: string[]; Mounts: { Name: string; Source: string }[] };
    Config: { Interface: { Socket: string; Types: string[] }; PropagatedMount: string };
  }[];
  expect(plugin!.Enabled).toBe(true);
  expect(plugin!.Config.Interface).toMatchObject({ Socket: 'stowage.sock', Types: ['docker.volumedriver/1.0'] });
  expect(plugin!.Settings.Env).toEqual(expect.arrayContaining([`AWS_ENDPOINT_URL=${lc!.url}`, `STOWAGE_INSTANCE_ID=${instanceId}`]));
  expect(plugin!.Settings.Mounts.find((m) => m.Name === 'state')?.Source).toBe(path.join(tmp!, 'state'));
}, 180_000);

test('a volume made through the managed plugin carries data from one container to the next, then is removed', async () => {
  await docker(['volume', 'create', '-d', PLUGIN, '--opt', 'size=1', 'shipped']);
  // dockerd names the driver by the plugin's full reference.
  expect(await ourVolumes()).toEqual(['shipped']);
  const [created] = await ebsVolumes('shipped');
  expect(created).toMatchObject({ Size: 1, AvailabilityZone: zone, State: 'available' });

  const withVolume = ['--network', 'none', '-v', 'shipped:/data', image];
  await docker(['run', '--rm', ...withVolume, 'sh', '-c', 'echo written-through-the-managed-plugin > /data/note']);
  const reader = (await docker(['run', '-d', ...withVolume, 'sleep', '60'])).trim();
  expect(await docker(['exec', reader, 'cat', '/data/note'])).toBe('written-through-the-managed-plugin\n');
  // The plugin's mount reached the host through its propagated mount, where dockerd took it from.
  // (Shared propagation may list it more than once.)
  const propagated = new Set((await volumeMounts()).map((m) => m.target));
  expect([...propagated]).toEqual([expect.stringMatching(/\/plugins\/[0-9a-f]{64}\/propagated-mount\/shipped$/)]);
  await docker(['rm', '-f', reader]);
  await eventually(() => pluginLines().filter((l) => l.volume === 'shipped' && l.msg === UNMOUNTED).length === 2, 'the reader to unmount');
  // Formatted once: the reader found the filesystem the writer made.
  expect(pluginLines().filter((l) => l.volume === 'shipped' && l.msg === 'blank device: formatting')).toHaveLength(1);

  await docker(['volume', 'rm', 'shipped']);
  expect(await ebsVolumes('shipped')).toEqual([]);
  expect(loopsUnder(lc!.dir)).toEqual([]);
  expect(await ourVolumes()).toEqual([]);
}, 300_000);

test('the plugin disables cleanly, leaving nothing mounted from its propagated mount', async () => {
  await docker(['plugin', 'disable', PLUGIN]);
  expect(await processesRootedUnder(d!.dataRoot)).toEqual([]);
  expect(await volumeMounts()).toEqual([]);
}, 120_000);

test('a bad setting stops the plugin at start, and the daemon log has the one line naming it', async () => {
  await docker(['plugin', 'set', PLUGIN, 'STOWAGE_MOUNT_TIMEOUT=5h']);
  const badSetting = await d!.docker(['plugin', 'enable', PLUGIN], { allowFailure: true, timeoutMs: 120_000 });
  expect(badSetting.code).not.toBe(0);
  // Relayed from the plugin's stderr under its id, quotes escaped by dockerd's log format.
  expect(d!.logs()).toContain('stowage: STOWAGE_MOUNT_TIMEOUT=\\"5h\\" is not valid: expected a duration');
  expect(JSON.parse(await docker(['plugin', 'inspect', '--format', '{{json .Enabled}}', PLUGIN]))).toBe(false);
  // dockerd 20.10 keeps the failed plugin's container, so a plain rm may refuse; -f removes it all.
  await docker(['plugin', 'rm', '-f', PLUGIN]);
  expect(await docker(['plugin', 'ls', '--format', '{{.Name}}'])).toBe('');
  expect(await processesRootedUnder(d!.dataRoot)).toEqual([]);
}, 300_000);
