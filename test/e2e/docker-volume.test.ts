/**
 * The plugin as dockerd's client: a private dockerd finds the plugin by its socket under
 * /run/docker/plugins and drives the whole volume protocol through the docker CLI. The volumes
 * live in the test-only DirDriver, which also counts the mounts the plugin passes on.
 */
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadConfig } from '../../plugin/config.js';
import { silentLogger } from '../../plugin/log.js';
import { startPlugin } from '../../plugin/main.js';
import { importBusybox } from '../helpers/busybox-image.js';
import { DirDriver } from '../helpers/dir-driver.js';
import { startDockerd, type Dockerd } from '../helpers/dockerd.js';
import { removeTree, scratchDir } from '../helpers/owned-dir.js';
import { uniquePluginName, type PluginName } from '../helpers/plugin-name.js';

let plugin: PluginName;
let tmp: string | undefined;
let driver: DirDriver;
let running: { close(): Promise<void> } | undefined;
let d: Dockerd | undefined;
let image: string;

beforeAll(async () => {
  plugin = await uniquePluginName();
  tmp = await scratchDir('e2e-volume');
  driver = new DirDriver(path.join(tmp, 'volumes'));
  const config = loadConfig(
    {
      STOWAGE_SOCKET: plugin.socket,
      STOWAGE_MOUNT_ROOT: path.join(tmp, 'mnt'),
      STOWAGE_STATE_DIR: path.join(tmp, 'state'),
      STOWAGE_DEFAULT_BACKING: 'relocatable',
    },
    { backend: 'local' },
  );
  running = await startPlugin({ config, drivers: [driver], log: silentLogger });
  d = await startDockerd({ name: 'volume' });
  image = await importBusybox(d);
});

afterAll(async () => {
  // dockerd first: stopping it removes the containers, which sends the last Unmounts to the plugin.
  try {
    await d?.stop();
  } finally {
    await running?.close();
    if (plugin) await rm(plugin.socket, { force: true });
    if (tmp) await removeTree(tmp);
  }
});

/** Fails with dockerd's log attached: a protocol problem shows up there, not in the CLI's message. */
async function docker(args: string[]): Promise<string> {
  const r = await d!.docker(args, { allowFailure: true });
  if (r.code !== 0) {
    throw new Error(`docker ${args.join(' ')} failed (${r.code}): ${r.stderr}\n--- dockerd log tail ---\n${d!.logs().slice(-6000)}`);
  }
  return r.stdout;
}

async function create(name: string, ...opts: string[]): Promise<void> {
  await docker(['volume', 'create', '-d', plugin.name, ...opts.flatMap((o) => ['--opt', o]), name]);
}

async function volumeNames(): Promise<string[]> {
  const out = await docker(['volume', 'ls', '--filter', `driver=${plugin.name}`, '--format', '{{.Name}}']);
  return out.split('\n').filter((n) => n !== '');
}

/** dockerd sends Unmount while it tears a container down, which may finish after the CLI returns. */
async function eventually(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; driver calls: ${JSON.stringify(driver.calls)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The plugin's reference count for the volume on this node, as `docker volume inspect` shows it. */
async function references(name: string): Promise<number> {
  const [info] = JSON.parse(await docker(['volume', 'inspect', name])) as Array<{ Status: { references?: number } }>;
  return info!.Status.references ?? 0;
}

test('docker volume create with a good option creates the volume in the driver', async () => {
  await create('v1', 'size=1');
  expect(driver.count('create', 'v1')).toBe(1);
  const meta = JSON.parse(await readFile(path.join(driver.root, 'meta', 'v1.json'), 'utf8')) as { options: { size: number } };
  expect(meta.options.size).toBe(1);
});

test.each([
  ['size=abc', 'size', 'abc'],
  ['bogus=1', 'bogus', '1'],
])('docker volume create --opt %s fails with our message naming the key', async (opt, key, value) => {
  const name = `bad-${key}`;
  const r = await d!.docker(['volume', 'create', '-d', plugin.name, '--opt', opt, name], { allowFailure: true });
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain(`invalid option ${key}=${JSON.stringify(value)}`);
  expect(driver.count('create', name)).toBe(0);
  expect(await volumeNames()).not.toContain(name);
});

test('docker volume inspect shows the driver, the scope and our Status', async () => {
  await create('inspected', 'size=2');
  const [info] = JSON.parse(await docker(['volume', 'inspect', 'inspected'])) as Array<{
    Driver: string;
    Scope: string;
    CreatedAt: string;
    Status: Record<string, unknown>;
  }>;
  expect(info!.Driver).toBe(plugin.name);
  expect(info!.Scope).toBe('global');
  expect(Number.isNaN(Date.parse(info!.CreatedAt))).toBe(false);
  expect(info!.Status).toMatchObject({ driver: 'dir', path: driver.mountpointOf('inspected'), size: 2 });
});

test('docker volume ls lists the plugin\'s volumes', async () => {
  await create('listed');
  const out = await docker(['volume', 'ls', '--format', '{{.Driver}} {{.Name}}']);
  expect(out.split('\n')).toContain(`${plugin.name} listed`);
});

test('a file written by one container is read back by the next', async () => {
  await create('shared-data');
  await docker(['run', '--rm', '--network', 'none', '-v', 'shared-data:/data', image, 'sh', '-c', 'echo written-by-first > /data/note']);
  expect(await docker(['run', '--rm', '--network', 'none', '-v', 'shared-data:/data', image, 'cat', '/data/note'])).toBe('written-by-first\n');
  // The bytes went to the driver's folder, not to a volume dockerd made up itself.
  expect(await readFile(path.join(driver.mountpointOf('shared-data'), 'note'), 'utf8')).toBe('written-by-first\n');
  await eventually(() => driver.count('unmount', 'shared-data') === 2, 'both containers to unmount');
  expect(driver.count('mount', 'shared-data')).toBe(2);
});

test('two containers mount the volume at once: the driver mounts once and unmounts once', async () => {
  await create('together');
  const run = (): Promise<string> =>
    docker(['run', '-d', '--network', 'none', '-v', 'together:/data', image, 'sleep', '30']).then((id) => id.trim());
  const first = await run();
  const second = await run();
  const running = await docker(['inspect', '--format', '{{.State.Running}}', first, second]);
  expect(running).toBe('true\ntrue\n');
  expect(driver.count('mount', 'together')).toBe(1);
  expect(await references('together')).toBe(2);

  await docker(['rm', '-f', first]);
  await eventually(async () => (await references('together')) === 1, 'the first container to unmount');
  // The other container still holds the volume: that Unmount must not have reached the driver.
  expect(driver.count('unmount', 'together')).toBe(0);
  await docker(['rm', '-f', second]);
  await eventually(() => driver.count('unmount', 'together') === 1, 'the last container to unmount');
  expect(driver.count('mount', 'together')).toBe(1);
});

test('docker volume rm removes the volume from the driver', async () => {
  await create('removed');
  await writeFile(path.join(driver.mountpointOf('removed'), 'junk'), 'x');
  await docker(['volume', 'rm', 'removed']);
  expect(driver.count('remove', 'removed')).toBe(1);
  expect(existsSync(driver.mountpointOf('removed'))).toBe(false);
  expect(await volumeNames()).not.toContain('removed');
});
