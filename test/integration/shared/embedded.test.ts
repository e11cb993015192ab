/**
 * `npm start` with no settings: the plugin runs an embedded localcloud and makes one EFS file
 * system (mount targets in every zone) itself, so shared volumes work out of the box, and a
 * restart finds the same file system again by its creation token.
 */
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { readMountinfo } from '../../../host/mountinfo.js';
import { removeTree, scratchDir } from '../../helpers/owned-dir.js';
import { startPluginProcess, type PluginProcess } from '../../helpers/plugin-process.js';
import { run } from '../../helpers/run.js';
import { post } from '../../unit/plugin/socket-client.js';

let tmp: string;
let plugin: PluginProcess | undefined;

async function call(route: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const reply = await post(path.join(tmp, 'plugin.sock'), `/VolumeDriver.${route}`, JSON.stringify(body));
  const parsed = JSON.parse(reply.body) as Record<string, unknown>;
  if (reply.status !== 200) throw new Error(`${route} failed: ${String(parsed.Err)}\n${plugin?.output().slice(-3000)}`);
  return parsed;
}

beforeAll(async () => {
  tmp = await scratchDir('shared-embedded');
});

afterAll(async () => {
  try {
    await plugin?.stop();
  } finally {
    for (const m of (await readMountinfo()).filter((m) => m.target.startsWith(`${tmp}/`)).reverse()) {
      await run('umount', ['-l', m.target], { allowFailure: true });
    }
    await removeTree(tmp);
  }
});

test('a shared volume on the embedded localcloud: created, mounted, written; the file system is reused after a restart', async () => {
  plugin = await startPluginProcess({
    STOWAGE_BACKEND: 'local',
    STOWAGE_SOCKET: path.join(tmp, 'plugin.sock'),
    STOWAGE_MOUNT_ROOT: path.join(tmp, 'mnt'),
    STOWAGE_STATE_DIR: path.join(tmp, 'state'),
  });
  await call('Create', { Name: 'notes', Opts: { mode: '0777' } });
  const { Mountpoint } = (await call('Mount', { Name: 'notes', ID: 'm1' })) as { Mountpoint: string };
  expect(Mountpoint).toBe(path.join(tmp, 'mnt', 'notes'));
  await writeFile(path.join(Mountpoint, 'note'), 'kept');
  const efsDir = path.join(tmp, 'state', 'localcloud', 'efs');
  const fileSystems = (await readdir(efsDir)).filter((n) => n.startsWith('fs-'));
  expect(fileSystems).toHaveLength(1);
  // The holder record names the plugin's instance, not the host: two plugins on one host stay apart.
  expect(await readdir(path.join(efsDir, fileSystems[0]!, 'stowage', 'default', '.holders', 'notes'))).toEqual([expect.stringMatching(/^i-[0-9a-f]+$/)]);
  await call('Unmount', { Name: 'notes', ID: 'm1' });

  expect(await readFile(path.join(efsDir, fileSystems[0]!, 'stowage', 'default', 'notes', 'note'), 'utf8')).toBe('kept');
  expect(Object.keys(JSON.parse(await readFile(path.join(efsDir, 'mount-targets.json'), 'utf8')) as object)).toHaveLength(3);

  await plugin.stop();
  await plugin.restart();
  const { Volume } = (await call('Get', { Name: 'notes' })) as { Volume: { Status: Record<string, unknown> } };
  expect(Volume.Status).toMatchObject({ fileSystemId: fileSystems[0], mode: '0777' });
  expect((await readdir(efsDir)).filter((n) => n.startsWith('fs-'))).toEqual(fileSystems);
  expect((await readMountinfo()).filter((m) => m.target.startsWith(`${tmp}/`)).map((m) => m.target)).toEqual([path.join(tmp, 'mnt', '.shares', fileSystems[0]!)]);
});
