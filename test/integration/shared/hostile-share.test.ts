import { spawn } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, readdir, readlink, rename, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { deleteRemovedShare, removedShares } from '../../../cli/ops/removed-shares.js';
import { createNfsDriver } from '../../../drivers/nfs/nfs-driver.js';
import type { Mounter } from '../../../drivers/shared/mounter.js';
import type { SharedDriver } from '../../../drivers/shared/share-driver.js';
import { VolumeFolders, keptEntry } from '../../../drivers/shared/volume-folders.js';
import { DataSafetyError, VolumeBusyError } from '../../../core/errors.js';
import { silentLogger } from '../../../core/log.js';
import type { VolumeOptions } from '../../../core/volume-options.js';
import { bindFlagsOf, type Host } from '../../../host/host.js';
import { createLinuxHost } from '../../../host/linux-host.js';
import { readMountinfo } from '../../../host/mountinfo.js';

/**
 * A share that someone else writes to: links planted at every level Stowage walks (the cluster
 * folder, a volume folder, `.removed/`, inside kept data), and swapped in while Stowage works.
 * Whatever happens on the share, nothing outside it may change. The share is a folder bind-mounted
 * as an NFS export would be (this kernel has no NFS client), through the same driver code.
 */
const NFS: VolumeOptions = {
  backing: 'nfs', size: 10, ebstype: 'gp3', encrypted: true, fs: 'ext4', mountopts: [], perfmode: 'generalpurpose',
  uid: 1000, gid: 1000, mode: '0770', share: 'nas:/exports',
};
const FAST = { beatMs: 50, staleMs: 400 };
const asRoot = process.getuid?.() === 0;

let scratch: string;
let server: string;
let exportDir: string;
let clusterDir: string;
let outside: string;
const drivers: { driver: SharedDriver; names: string[] }[] = [];

const ctx = (name: string, ms = 20_000) => ({ deadline: Date.now() + ms, log: silentLogger.child({ volume: name }) });

/** The stand-in for an NFS client: `nas:/path` is `${server}/path`, bind-mounted with the flags asked for. */
function bindMounter(host: Host, before?: (folder: string) => Promise<void>): Mounter {
  return {
    async mount(source, target) {
      const folder = join(server, source.path);
      await before?.(folder);
      await host.bindMount(folder, target, bindFlagsOf(source.options));
    },
  };
}

async function open(node: string, before?: (folder: string) => Promise<void>, sharedDelete = false): Promise<SharedDriver> {
  const host = createLinuxHost({ deviceDir: scratch, log: silentLogger });
  const driver = await createNfsDriver({
    host, mounter: bindMounter(host, before), cluster: 'c1', mountRoot: join(scratch, node, 'mnt'), stateDir: join(scratch, node, 'state'),
    sharedDelete, node, holderTiming: FAST, log: silentLogger,
  });
  drivers.push({ driver, names: [] });
  return driver;
}

async function mountOn(driver: SharedDriver, name: string): Promise<string> {
  drivers.find((d) => d.driver === driver)!.names.push(name);
  return driver.mount(name, ctx(name));
}

/** Everything about a tree that a write, chown, chmod, move or delete would change. */
async function snapshot(dir: string): Promise<string[]> {
  const lines: string[] = [];
  const walk = async (at: string): Promise<void> => {
    for (const name of (await readdir(at)).sort()) {
      const full = join(at, name);
      const st = await lstat(full);
      const link = st.isSymbolicLink() ? ` -> ${await readlink(full)}` : '';
      lines.push(`${relative(dir, full)} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ${st.mtimeMs} ${st.ino}${link}`);
      if (st.isDirectory()) await walk(full);
    }
  };
  await walk(dir);
  return lines;
}

async function mountsHere(): Promise<string[]> {
  return (await readMountinfo()).map((m) => m.target).filter((t) => t.startsWith(`${scratch}/`));
}

beforeEach(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'stowage-hostile-'));
  server = join(scratch, 'server');
  exportDir = join(server, 'exports');
  clusterDir = join(exportDir, 'stowage', 'c1');
  outside = join(scratch, 'outside');
  await mkdir(join(outside, 'victim', 'deep'), { recursive: true });
  await writeFile(join(outside, 'victim', 'deep', 'precious'), 'do not touch');
  await mkdir(exportDir, { recursive: true });
});

afterEach(async () => {
  for (const { driver, names } of drivers.splice(0)) {
    for (const name of names) await driver.unmount(name, ctx(name)).catch(() => undefined);
    // A restarted node's driver may still hold a volume mounted from the same share root: closing
    // can find it busy; the sweep below takes every mount down, children first.
    await driver.close(silentLogger).catch(() => undefined);
  }
  for (const target of (await mountsHere()).reverse()) await createLinuxHost({ deviceDir: scratch }).unmount(target, { timeoutMs: 10_000, lazyAfterTimeout: true });
  await rm(scratch, { recursive: true, force: true });
});

const describeRoot = asRoot ? describe : describe.skip;

describeRoot('a share with planted symlinks', () => {
  test('a link at the cluster folder: Create, Get, Mount and Remove are refused naming it, List shows nothing, nothing outside changes', async () => {
    await mkdir(join(exportDir, 'stowage'), { recursive: true });
    await symlink(join(outside, 'victim'), clusterDir);
    const before = await snapshot(outside);
    const driver = await open('n1');
    const err = await driver.create('web', NFS, ctx('web')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataSafetyError);
    expect((err as Error).message).toMatch(/stowage\/c1: it is a symbolic link/);
    expect(await driver.list(ctx('list'))).toEqual([]);
    await expect(driver.get('deep', ctx('deep'))).rejects.toThrow(DataSafetyError);
    await expect(driver.mount('deep', ctx('deep'))).rejects.toThrow(DataSafetyError);
    await expect(driver.remove('deep', ctx('deep'))).rejects.toThrow(DataSafetyError);
    expect(await snapshot(outside)).toEqual(before);
  });

  test('a link at a volume folder, and a link at .removed/: refused naming them; the real volume stays where it is; nothing outside changes', async () => {
    const driver = await open('n1');
    await driver.create('web', NFS, ctx('web'));
    await symlink(join(outside, 'victim'), join(clusterDir, 'evil'));
    const before = await snapshot(outside);

    expect((await driver.list(ctx('list'))).map((v) => v.name)).toEqual(['web']);
    for (const op of [() => driver.get('evil', ctx('evil')), () => driver.mount('evil', ctx('evil')), () => driver.remove('evil', ctx('evil')), () => driver.create('evil', NFS, ctx('evil'))]) {
      const err = await op().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DataSafetyError);
      expect((err as Error).message).toContain('stowage/c1/evil: it is a symbolic link');
    }

    await symlink(join(outside, 'victim'), join(clusterDir, '.removed'));
    const err = await driver.remove('web', ctx('web')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataSafetyError);
    expect((err as Error).message).toContain('stowage/c1/.removed: it is a symbolic link');
    expect((await stat(join(clusterDir, 'web'))).isDirectory()).toBe(true);
    expect(await snapshot(outside)).toEqual(before);
  });

  test('gc deletes kept data with links inside it, and links named like kept data, without following any', async () => {
    const driver = await open('n1');
    await driver.create('web', NFS, ctx('web'));
    await driver.remove('web', ctx('web'));
    const removed = join(clusterDir, '.removed');
    const [entry] = await readdir(removed);
    const kept = join(removed, entry!);
    // A writer on the share makes the kept data a trap for whoever deletes it.
    await chmod(kept, 0o755);
    await symlink(join(outside, 'victim'), join(kept, 'link-to-dir'));
    await symlink(join(outside, 'victim', 'deep', 'precious'), join(kept, 'link-to-file'));
    await mkdir(join(kept, 'sub'));
    await symlink(outside, join(kept, 'sub', 'link-up'));
    await symlink(join(outside, 'victim'), join(removed, keptEntry('planted', new Date('2020-01-01T00:00:00Z'))));
    const before = await snapshot(outside);

    const old = await removedShares(exportDir, 'c1', 0, Date.now() + 86_400_000);
    expect(old.map((k) => k.entry).sort()).toEqual([entry, keptEntry('planted', new Date('2020-01-01T00:00:00Z'))].sort());
    for (const k of old) await deleteRemovedShare(k);
    expect(await readdir(removed)).toEqual([]);
    expect(await snapshot(outside)).toEqual(before);
  });

  test('a link swapped in for the volume folder while it is being mounted: the mount is found not to be the volume, undone and refused', async () => {
    const before = await snapshot(outside);
    const driver = await open('n1', async (folder) => {
      if (!folder.endsWith('/web')) return;
      await rename(folder, `${folder}.moved`);
      await symlink(join(outside, 'victim'), folder);
    });
    await driver.create('web', NFS, ctx('web'));
    const err = await mountOn(driver, 'web').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataSafetyError);
    expect((err as Error).message).toMatch(/not the volume's directory/);
    expect(await mountsHere()).not.toContain(join(scratch, 'n1', 'mnt', 'web'));
    expect(await snapshot(outside)).toEqual(before);
  });

  test('links swapped in and out at the volume folder and .removed/ all along: Create, List, Get, Remove never act outside the share', async () => {
    const before = await snapshot(outside);
    const driver = await open('n1', undefined, true);
    await driver.create('seed', NFS, ctx('seed'));
    // Another client of the share flips both names between a directory and a link, as fast as it can.
    const flipper = spawn('sh', ['-c', `cd '${clusterDir}' && while :; do
      mkdir -p web.d .removed.d; mv -T web.d web 2>/dev/null; mv -T .removed.d .removed 2>/dev/null
      mv -T web web.d 2>/dev/null; ln -sfn '${join(outside, 'victim')}' web
      mv -T .removed .removed.d 2>/dev/null; ln -sfn '${join(outside, 'victim')}' .removed
    done`], { stdio: 'ignore' });
    try {
      const refused = new Set<string>();
      let done = 0;
      for (let i = 0; i < 150; i++) {
        for (const op of [
          () => driver.create('web', NFS, ctx('web')),
          () => driver.list(ctx('list')),
          () => driver.get('web', ctx('web')),
          () => driver.remove('web', ctx('web')),
        ]) {
          await op().then(() => (done += 1), (e: unknown) => refused.add((e as Error).constructor.name === 'Error' ? (e as Error).message : (e as Error).constructor.name));
        }
      }
      // Refusals are the safety errors and plain "not there" answers, never an escape.
      expect([...refused].filter((n) => !['DataSafetyError', 'VolumeNotFoundError', 'HostError'].includes(n))).toEqual([]);
      expect(done).toBeGreaterThan(0);
      expect(refused.has('DataSafetyError')).toBe(true);
    } finally {
      flipper.kill('SIGKILL');
    }
    expect(await snapshot(outside)).toEqual(before);
  }, 60_000);
});

describeRoot('mount flags', () => {
  test('the share root is mounted nosuid,nodev,noexec and a volume nosuid,nodev', async () => {
    const driver = await open('n1');
    await driver.create('web', NFS, ctx('web'));
    const path = await mountOn(driver, 'web');
    const byTarget = new Map((await readMountinfo()).map((m) => [m.target, m.options.split(',')]));
    const root = [...byTarget.keys()].find((t) => t.startsWith(join(scratch, 'n1', 'mnt', '.shares')))!;
    expect(byTarget.get(root)).toEqual(expect.arrayContaining(['nosuid', 'nodev', 'noexec']));
    expect(byTarget.get(path)).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
    expect(byTarget.get(path)).not.toContain('noexec');
  });
});

describeRoot('data Remove keeps aside', () => {
  test('.removed/ is forced to 0700 on every Remove and each kept directory is 000', async () => {
    const driver = await open('n1');
    await driver.create('a', NFS, ctx('a'));
    await driver.create('b', NFS, ctx('b'));
    await driver.remove('a', ctx('a'));
    const removed = join(clusterDir, '.removed');
    await chmod(removed, 0o777);
    await driver.remove('b', ctx('b'));
    expect(((await stat(removed)).mode & 0o7777).toString(8)).toBe('700');
    const kept = await readdir(removed);
    expect(kept).toHaveLength(2);
    for (const k of kept) expect(((await stat(join(removed, k))).mode & 0o7777).toString(8)).toBe('0');
  });

  test('gc ages kept data by the removal time in its name, not by its mtime', async () => {
    const removed = join(clusterDir, '.removed');
    const now = Date.parse('2026-12-01T00:00:00Z');
    const longAgo = keptEntry('old', new Date(now - 40 * 86_400_000));
    const lately = keptEntry('new', new Date(now - 2 * 86_400_000));
    await mkdir(join(removed, longAgo), { recursive: true });
    await mkdir(join(removed, lately), { recursive: true });
    // A container or a restore touched the old one yesterday; the new one carries an ancient mtime.
    await utimes(join(removed, longAgo), new Date(now - 86_400_000), new Date(now - 86_400_000));
    await utimes(join(removed, lately), new Date(0), new Date(0));
    await mkdir(join(removed, 'not-ours'));
    expect((await removedShares(exportDir, 'c1', 30, now)).map((k) => [k.entry, k.ageDays])).toEqual([[longAgo, 40]]);
  });

  test('a Remove that finds a new holder once the name is free puts the directory back', async () => {
    const driver = await open('n1');
    await driver.create('web', NFS, ctx('web'));
    const folders = new VolumeFolders(join(scratch, 'n1', 'mnt', '.shares', (await readdir(join(scratch, 'n1', 'mnt', '.shares')))[0]!), 'c1');
    const busy = new VolumeBusyError('volume web is mounted on node n2');
    await expect(folders.retire('web', true, () => Promise.reject(busy))).rejects.toBe(busy);
    expect((await stat(join(clusterDir, 'web'))).isDirectory()).toBe(true);
    expect(await readdir(join(clusterDir, '.removed'))).toEqual([]);
  });
});

describeRoot('a shared volume in use on another node', () => {
  test('Remove is refused naming the node that mounts it; after that node unmounts, Remove goes through', async () => {
    const n1 = await open('n1');
    const n2 = await open('n2');
    await n1.create('web', NFS, ctx('web'));
    // dockerd's Create reaches every node that will use the volume: n2 learns the share so.
    await n2.create('web', NFS, ctx('web'));
    await mountOn(n1, 'web');
    expect(await readdir(join(clusterDir, '.holders', 'web'))).toEqual(['n1']);
    const err = await n2.remove('web', ctx('web')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VolumeBusyError);
    expect((err as Error).message).toBe('volume web is mounted on node n1; stop its tasks there first');
    expect((await stat(join(clusterDir, 'web'))).isDirectory()).toBe(true);

    await n1.unmount('web', ctx('web'));
    await n2.remove('web', ctx('web'));
    expect(await readdir(clusterDir)).toEqual(['.heartbeats', '.holders', '.removed']);
    expect(await readdir(join(clusterDir, '.holders'))).toEqual([]);
  });

  test('the record of a node that is gone is recognised by a heartbeat that stopped changing, on the judge\'s own clock', async () => {
    const n1 = await open('n1');
    const n2 = await open('n2');
    await n1.create('web', NFS, ctx('web'));
    // dockerd's Create reaches every node that will use the volume: n2 learns the share so.
    await n2.create('web', NFS, ctx('web'));
    await mountOn(n1, 'web');
    // n1 dies: its heartbeat stops, its record and its (future-dated) last beat stay on the share.
    await n1.close(silentLogger);
    await writeFile(join(clusterDir, '.heartbeats', 'n1'), `999 ${new Date(Date.now() + 365 * 86_400_000).toISOString()}\n`);
    const started = performance.now();
    await n2.remove('web', ctx('web'));
    expect(performance.now() - started).toBeGreaterThanOrEqual(FAST.staleMs);
    expect(await readdir(join(clusterDir, '.holders'))).toEqual([]);
  });

  test('a plugin restarted with the volume still mounted beats again at once, so it is not taken for gone; a record whose mount did not survive goes', async () => {
    const n1 = await open('n1');
    const n2 = await open('n2');
    for (const name of ['web', 'db']) {
      await n1.create(name, NFS, ctx(name));
      await n2.create(name, NFS, ctx(name));
    }
    await mountOn(n1, 'web');
    await mkdir(join(clusterDir, '.holders', 'db'), { recursive: true });
    await writeFile(join(clusterDir, '.holders', 'db', 'n1'), '');
    await n1.close(silentLogger);
    await open('n1');
    await new Promise((r) => setTimeout(r, FAST.staleMs + 100));
    const err = await n2.remove('web', ctx('web')).catch((e: unknown) => e);
    expect((err as Error).message).toBe('volume web is mounted on node n1; stop its tasks there first');
    expect(await readdir(join(clusterDir, '.holders', 'db'))).toEqual([]);
  });

  test('a node not yet judged when the deadline nears is a retryable refusal that says how long its heartbeat was unchanged', async () => {
    const n2 = await open('n2');
    await n2.create('web', NFS, ctx('web'));
    await mkdir(join(clusterDir, '.holders', 'web'), { recursive: true });
    await writeFile(join(clusterDir, '.holders', 'web', 'ghost'), '');
    const err = await n2.remove('web', ctx('web', 5_000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VolumeBusyError);
    expect((err as VolumeBusyError).retryable).toBe(true);
    expect((err as Error).message).toMatch(/mounted on node\(s\) ghost \(heartbeat unchanged for \d+ s\)/);
  });
});
