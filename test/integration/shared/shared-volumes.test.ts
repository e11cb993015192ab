import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DescribeAccessPointsCommand, DescribeMountTargetsCommand } from '@aws-sdk/client-efs';
import { CallCounter } from '../../../aws/call-counter.js';
import { embeddedFileSystem } from '../../../cli/embedded-efs.js';
import { createLocalcloudMounter } from '../../../cli/localcloud-mounter.js';
import { createEfsDriver } from '../../../drivers/efs/efs-driver.js';
import { createNfsDriver } from '../../../drivers/nfs/nfs-driver.js';
import type { Mounter } from '../../../drivers/shared/mounter.js';
import type { SharedDriver } from '../../../drivers/shared/share-driver.js';
import { createLinuxHost } from '../../../host/linux-host.js';
import { readMountinfo } from '../../../host/mountinfo.js';
import { Paths } from '../../../localcloud/paths.js';
import { silentLogger } from '../../../core/log.js';
import type { VolumeOptions } from '../../../core/volume-options.js';
import { runInstance, startTestCloud, type TestCloud } from '../localcloud/helpers.js';

const SHARED: VolumeOptions = {
  backing: 'shared', size: 10, ebstype: 'gp3', encrypted: true, fs: 'ext4', mountopts: [], perfmode: 'generalpurpose', uid: 1000, gid: 1001, mode: '0770',
};

/** One emulated node: its zone, its mount root, and the servers its mounter was asked for. */
interface Node {
  zone: string;
  mountRoot: string;
  servers: string[];
}

let t: TestCloud;
let scratch: string;
let fsId: string;
let ipByZone: Map<string, string>;
const opened: { driver: SharedDriver; node: Node; names: Set<string> }[] = [];

const ctx = (name: string) => ({ deadline: Date.now() + 30_000, log: silentLogger.child({ volume: name }) });

function mounterFor(node: Node): Mounter {
  const host = createLinuxHost({ deviceDir: scratch, log: silentLogger });
  const inner = createLocalcloudMounter(host, new Paths(t.dir).mountTargetsFile);
  return {
    mount: (source, target, log) => {
      node.servers.push(source.server);
      return inner.mount(source, target, log);
    },
  };
}

async function node(zone: string): Promise<Node> {
  await runInstance(t, zone);
  const mountRoot = join(scratch, zone);
  await mkdir(mountRoot, { recursive: true });
  return { zone, mountRoot, servers: [] };
}

function efsDriver(n: Node, mode: 'directory' | 'accesspoint', sharedDelete = false): SharedDriver {
  const host = createLinuxHost({ deviceDir: scratch, log: silentLogger });
  const driver = createEfsDriver({
    efs: t.efs, counter: new CallCounter(), host, mounter: mounterFor(n), zone: n.zone, cluster: 'it', mountRoot: n.mountRoot,
    fileSystems: { generalpurpose: fsId }, mode, sharedDelete, pollInitialMs: 20,
  });
  opened.push({ driver, node: n, names: new Set() });
  return driver;
}

async function mountOn(driver: SharedDriver, name: string): Promise<string> {
  opened.find((o) => o.driver === driver)!.names.add(name);
  return driver.mount(name, ctx(name));
}

/** Mounts made under this test's scratch folder only. */
async function mountsHere(): Promise<string[]> {
  return (await readMountinfo()).map((m) => m.target).filter((target) => target.startsWith(`${scratch}/`));
}

beforeAll(async () => {
  t = await startTestCloud({ zones: ['us-east-1a', 'us-east-1b'] });
  scratch = await mkdtemp(join(tmpdir(), 'stowage-shared-it-'));
  fsId = await embeddedFileSystem(t.efs, t.ec2, 'it');
  let targets = (await t.efs.send(new DescribeMountTargetsCommand({ FileSystemId: fsId }))).MountTargets ?? [];
  while (targets.some((m) => m.LifeCycleState !== 'available')) {
    await new Promise((r) => setTimeout(r, 20));
    targets = (await t.efs.send(new DescribeMountTargetsCommand({ FileSystemId: fsId }))).MountTargets ?? [];
  }
  ipByZone = new Map(targets.map((m) => [m.AvailabilityZoneName!, m.IpAddress!]));
});

afterEach(async () => {
  for (const { driver, names } of opened.splice(0)) {
    for (const name of names) await driver.unmount(name, ctx(name)).catch(() => undefined);
    await driver.close(silentLogger);
  }
  expect(await mountsHere()).toEqual([]);
});

afterAll(async () => {
  try {
    await t?.close();
  } finally {
    for (const target of (await mountsHere().catch(() => [])).reverse()) await createLinuxHost({ deviceDir: scratch }).unmount(target, { timeoutMs: 10_000, lazyAfterTimeout: true });
    await rm(scratch, { recursive: true, force: true });
  }
});

describe('EFS directory mode, two instances in two zones', () => {
  test('a file written on one instance is seen on the other at once; each went through its own zone\'s mount target; uid/gid/mode applied', async () => {
    const a = await node('us-east-1a');
    const b = await node('us-east-1b');
    const onA = efsDriver(a, 'directory');
    const onB = efsDriver(b, 'directory');
    await onA.create('web', SHARED, ctx('web'));
    expect(await onB.get('web', ctx('web'))).toMatchObject({ backing: 'shared', status: { uid: 1000, gid: 1001, mode: '0770' } });

    const pathA = await mountOn(onA, 'web');
    const pathB = await mountOn(onB, 'web');
    expect([pathA, pathB]).toEqual([join(a.mountRoot, 'web'), join(b.mountRoot, 'web')]);
    await writeFile(join(pathA, 'index.html'), 'hello from a');
    expect(await readFile(join(pathB, 'index.html'), 'utf8')).toBe('hello from a');
    await writeFile(join(pathB, 'from-b'), 'b');
    expect(await readdir(pathA)).toEqual(['from-b', 'index.html']);

    const st = await stat(pathB);
    expect([st.uid, st.gid, (st.mode & 0o7777).toString(8)]).toEqual([1000, 1001, '770']);
    expect(new Set(a.servers)).toEqual(new Set([ipByZone.get('us-east-1a')]));
    expect(new Set(b.servers)).toEqual(new Set([ipByZone.get('us-east-1b')]));
    expect(new Set(await mountsHere())).toEqual(new Set([pathA, pathB, join(a.mountRoot, '.shares', fsId), join(b.mountRoot, '.shares', fsId)]));

    // localcloud's bind mounts keep the flags the drivers ask of NFS: the management mount runs nothing.
    const flags = new Map((await readMountinfo()).map((m) => [m.target, m.options.split(',')]));
    expect(flags.get(join(a.mountRoot, '.shares', fsId))).toEqual(expect.arrayContaining(['nosuid', 'nodev', 'noexec']));
    expect(flags.get(pathA)).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
    expect(flags.get(pathA)).not.toContain('noexec');
  });

  test('Remove without STOWAGE_SHARED_DELETE keeps the data aside; with it the data is gone; a new volume of the name starts empty', async () => {
    const a = await node('us-east-1a');
    const keep = efsDriver(a, 'directory');
    const fsDir = new Paths(t.dir).fileSystemDir(fsId);
    await keep.create('kept', SHARED, ctx('kept'));
    const path = await mountOn(keep, 'kept');
    await writeFile(join(path, 'data'), 'precious');
    await keep.unmount('kept', ctx('kept'));
    await keep.remove('kept', ctx('kept'));
    expect(await keep.get('kept', ctx('kept'))).toBeUndefined();
    const aside = (await readdir(join(fsDir, 'stowage/it/.removed'))).filter((n) => n.startsWith('kept-'));
    expect(aside).toHaveLength(1);
    expect(await readFile(join(fsDir, 'stowage/it/.removed', aside[0]!, 'data'), 'utf8')).toBe('precious');
    await keep.create('kept', SHARED, ctx('kept'));
    expect(await readdir(join(fsDir, 'stowage/it/kept'))).toEqual([]);

    const del = efsDriver(a, 'directory', true);
    await del.create('scratch', SHARED, ctx('scratch'));
    await writeFile(join(fsDir, 'stowage/it/scratch/tmp'), 'x');
    await del.remove('scratch', ctx('scratch'));
    expect((await readdir(join(fsDir, 'stowage/it'))).filter((n) => n === 'scratch')).toEqual([]);
    expect((await readdir(join(fsDir, 'stowage/it/.removed'))).filter((n) => n.startsWith('scratch-'))).toEqual([]);
  });
});

describe('EFS access point mode', () => {
  test('an access point per volume, entered at its root on both instances; Remove deletes it', async () => {
    const a = await node('us-east-1a');
    const b = await node('us-east-1b');
    const onA = efsDriver(a, 'accesspoint');
    const onB = efsDriver(b, 'accesspoint');
    await onA.create('db', { ...SHARED, uid: 999, gid: 999, mode: '0700' }, ctx('db'));
    const pathA = await mountOn(onA, 'db');
    const pathB = await mountOn(onB, 'db');
    await writeFile(join(pathA, 'row'), '1');
    expect(await readFile(join(pathB, 'row'), 'utf8')).toBe('1');
    const st = await stat(pathB);
    expect([st.uid, st.gid, (st.mode & 0o7777).toString(8)]).toEqual([999, 999, '700']);
    expect((await onB.get('db', ctx('db')))!.status).toMatchObject({ efsMode: 'accesspoint', path: '/stowage/it/db', uid: 999, gid: 999, mode: '0700' });

    await onA.unmount('db', ctx('db'));
    await onB.unmount('db', ctx('db'));
    await onA.remove('db', ctx('db'));
    const left = (await t.efs.send(new DescribeAccessPointsCommand({ FileSystemId: fsId }))).AccessPoints ?? [];
    expect(left.filter((ap) => ap.Tags?.some((tag) => tag.Key === 'stowage:volume' && tag.Value === 'db'))).toEqual([]);
    // The remover's cache is dropped at once; other nodes' listings follow within their cache time.
    expect(await onA.get('db', ctx('db'))).toBeUndefined();
  });
});

describe('plain NFS', () => {
  test('share=<server>:/export: a directory per volume under the export, shared by both instances', async () => {
    const a = await node('us-east-1a');
    const b = await node('us-east-1b');
    await mkdir(join(new Paths(t.dir).fileSystemDir(fsId), 'exports'), { recursive: true });
    const share = `${ipByZone.get('us-east-1a')}:/exports`;
    const nfs = (n: Node) => createNfsDriver({
      host: createLinuxHost({ deviceDir: scratch }), mounter: mounterFor(n), cluster: 'it', mountRoot: n.mountRoot,
      stateDir: join(n.mountRoot, '.state'), sharedDelete: true, log: silentLogger,
    }).then((driver) => (opened.push({ driver, node: n, names: new Set() }), driver));
    const onA = await nfs(a);
    const onB = await nfs(b);
    await onA.create('files', { ...SHARED, backing: 'nfs', share }, ctx('files'));
    await onB.create('files', { ...SHARED, backing: 'nfs', share }, ctx('files'));
    await writeFile(join(await mountOn(onA, 'files'), 'f'), 'nfs');
    expect(await readFile(join(await mountOn(onB, 'files'), 'f'), 'utf8')).toBe('nfs');
    expect(await readdir(join(new Paths(t.dir).fileSystemDir(fsId), 'exports/stowage/it/files'))).toEqual(['f']);
  });
});
