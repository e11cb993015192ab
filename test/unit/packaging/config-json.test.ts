/**
 * config.json against the code that reads it: every setting the plugin reads is there with a
 * description and a production default, the defaults pass the plugin's own checks, and the fixed
 * paths (socket, PropagatedMount, state mount, entrypoint) agree with the plugin and the Dockerfile.
 * That dockerd accepts the file is proved by test/e2e/managed-plugin.test.ts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, SETTINGS, type Setting } from '../../../plugin/config.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const read = (file: string): string => readFileSync(path.join(REPO, file), 'utf8');

interface PluginConfig {
  description: string;
  entrypoint: string[];
  workdir: string;
  interface: { types: string[]; socket: string };
  network: { type: string };
  propagatedMount: string;
  linux: { capabilities: string[]; allowAllDevices: boolean };
  mounts: { name: string; description: string; source: string; destination: string; type: string; options: string[]; settable?: string[] }[];
  env: { name: string; description: string; settable?: string[]; value: string }[];
}

const config = JSON.parse(read('config.json')) as PluginConfig;
const envByName = new Map(config.env.map((e) => [e.name, e]));
const defaults = Object.fromEntries(config.env.map((e) => [e.name, e.value]));
/** Fixed by dockerd rather than by the operator: the socket lives where Interface.Socket says. */
const NOT_SETTINGS = ['STOWAGE_SOCKET'];
/** Fixed because config.json's PropagatedMount and state mount destination are fixed. */
const FIXED_PATHS = ['STOWAGE_MOUNT_ROOT', 'STOWAGE_STATE_DIR'];

/** The settings the managed plugin offers: every one loadConfig reads (its SETTINGS table) except the development ones. */
function settingsReadByPlugin(): string[] {
  return Object.entries(SETTINGS as Record<string, Setting>).filter(([, s]) => !s.devOnly).map(([name]) => name);
}

test('every setting the plugin reads is in config.json with a description, and nothing else is', () => {
  const read = settingsReadByPlugin().filter((name) => !NOT_SETTINGS.includes(name));
  expect(read.length).toBeGreaterThan(15);
  expect(config.env.map((e) => e.name).sort()).toEqual(read.sort());
  for (const e of config.env) expect(e.description.length).toBeGreaterThan(10);
});

test('the managed plugin runs on AWS only: localcloud is a development tool', () => {
  expect(envByName.has('STOWAGE_BACKEND')).toBe(false);
  expect(config.env.filter((e) => e.name.startsWith('STOWAGE_LOCALCLOUD'))).toEqual([]);
  // and the entrypoint does not pass --dev, without which STOWAGE_BACKEND=local is refused
  expect(config.entrypoint).not.toContain('--dev');
});

test('every setting is settable except the paths config.json fixes', () => {
  for (const e of config.env) {
    expect([e.name, e.settable ?? []]).toEqual([e.name, FIXED_PATHS.includes(e.name) ? [] : ['value']]);
  }
});

test('the defaults are a valid production configuration', () => {
  const loaded = loadConfig(defaults);
  expect(loaded).toMatchObject({ backend: 'aws', cluster: 'default', defaultBacking: 'shared', mountTimeoutMs: 100_000 });
  // Shipped empty: region and identity come from instance metadata, the endpoints from the SDK.
  for (const name of ['AWS_REGION', 'AWS_ENDPOINT_URL', 'STOWAGE_INSTANCE_ID', 'STOWAGE_AZ']) {
    expect(defaults[name]).toBe('');
  }
});

test('the socket, PropagatedMount and state mount are where the plugin looks', () => {
  const loaded = loadConfig(defaults);
  expect(config.interface).toEqual({ types: ['docker.volumedriver/1.0'], socket: path.basename(loaded.socket) });
  // dockerd mounts the plugin's socket folder at /run/docker/plugins.
  expect(path.dirname(loaded.socket)).toBe('/run/docker/plugins');
  expect(config.propagatedMount).toBe(loaded.mountRoot);
  const state = config.mounts.find((m) => m.name === 'state');
  expect(state).toMatchObject({ destination: loaded.stateDir, type: 'bind', options: ['rbind'], settable: ['source'] });
  expect(envByName.get('STOWAGE_STATE_DIR')!.value).toBe(state!.destination);
});

test('host network, CAP_SYS_ADMIN, all devices and /dev from the host: what attach, mkfs and mount need', () => {
  expect(config.network.type).toBe('host');
  expect(config.linux).toEqual({ capabilities: ['CAP_SYS_ADMIN'], allowAllDevices: true });
  expect(config.mounts.find((m) => m.name === 'dev')).toMatchObject({ source: '/dev', destination: '/dev', type: 'bind', options: ['rbind'] });
  expect(config.mounts.find((m) => m.name === 'dev')!.settable).toBeUndefined();
});

test('the entrypoint runs the plugin as the Dockerfile and the assembled rootfs lay it out', () => {
  const dockerfile = read('Dockerfile');
  const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1];
  expect(JSON.parse(entrypoint!)).toEqual(config.entrypoint);
  const workdirs = [...dockerfile.matchAll(/^WORKDIR (\S+)$/gm)].map((m) => m[1]);
  expect(workdirs.at(-1)).toBe(config.workdir);
  expect(config.entrypoint).toEqual(['/usr/local/bin/node', `${config.workdir}/dist/stowage.mjs`, 'plugin']);
  const script = read('scripts/assemble-rootfs.sh');
  expect(script).toContain('install_binary "$NODE" /usr/local/bin/node');
  expect(script).toContain(`"$R${config.workdir}/dist/stowage.mjs"`);
});

test('the Dockerfile build sees every source folder the compiler needs, and no local build output', () => {
  const ignored = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  const { include } = JSON.parse(read('tsconfig.json')) as { include: string[] };
  // bench/ is compiled in development only; the image leaves it out.
  expect(include.filter((dir) => dir !== 'bench' && ignored.includes(dir))).toEqual([]);
  expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', 'test', '.git']));
  // `npm run build` bundles with this script.
  expect(ignored).toEqual(expect.arrayContaining(['scripts/*', '!scripts/bundle.mjs']));
});
