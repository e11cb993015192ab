import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNfsDriver } from '../../../drivers/nfs/nfs-driver.js';
import { createNfsMounter } from '../../../drivers/shared/mounter.js';
import { VolumeNotFoundError } from '../../../core/errors.js';
import { silentLogger } from '../../../core/log.js';
import type { VolumeOptions } from '../../../core/volume-options.js';
import { RecordingHost } from '../efs/recording-host.js';

const NFS: VolumeOptions = {
  backing: 'nfs', size: 10, ebstype: 'gp3', encrypted: true, fs: 'ext4', mountopts: [], perfmode: 'generalpurpose',
  uid: 33, gid: 33, mode: '0770', share: 'nas.example.internal:/exports/docker',
};
const PLAIN = ['hard', 'timeo=600', 'retrans=2'];

let dir: string;
let host: RecordingHost;

const ctx = (name: string) => ({ deadline: Date.now() + 3000, log: silentLogger.child({ volume: name }) });
const open = () => createNfsDriver({
  host, mounter: createNfsMounter(host), cluster: 'c1', mountRoot: join(dir, 'mnt'), stateDir: join(dir, 'state'), sharedDelete: false, log: silentLogger,
});

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stowage-nfs-unit-'));
  host = new RecordingHost();
});
afterEach(() => rm(dir, { recursive: true, force: true }));

test('a directory per volume under the export, mounted with the plain NFS options (no EFS ones)', async () => {
  const driver = await open();
  await driver.create('web', NFS, ctx('web'));
  expect(await driver.mount('web', ctx('web'))).toBe(join(dir, 'mnt', 'web'));
  const rootKey = host.nfsMounts[0]!.target;
  expect(host.nfsMounts).toEqual([
    { source: 'nas.example.internal:/exports/docker', target: rootKey, options: [...PLAIN, 'nosuid', 'nodev', 'noexec'], type: 'nfs4' },
    { source: 'nas.example.internal:/exports/docker/stowage/c1/web', target: join(dir, 'mnt', 'web'), options: [...PLAIN, 'nosuid', 'nodev'], type: 'nfs4' },
  ]);
  expect(rootKey.startsWith(join(dir, 'mnt', '.shares', 'nfs-'))).toBe(true);
  const st = await stat(join(rootKey, 'stowage/c1/web'));
  expect([st.uid, st.gid, (st.mode & 0o777).toString(8)]).toEqual([33, 33, '770']);
  expect(await driver.get('web', ctx('web'))).toMatchObject({ backing: 'nfs', status: { share: NFS.share, path: '/stowage/c1/web' }, options: { share: NFS.share } });
});

test('the shares a node was given are remembered across a restart, so Mount and Get find their volumes', async () => {
  await (await open()).create('web', NFS, ctx('web'));
  expect(JSON.parse(await readFile(join(dir, 'state', 'nfs-shares.json'), 'utf8'))).toEqual([NFS.share]);
  const restarted = await open();
  expect((await restarted.list(ctx('list'))).map((v) => v.name)).toEqual(['web']);
  await restarted.mount('web', ctx('web'));
  expect(host.nfsMounts.at(-1)!.source).toBe('nas.example.internal:/exports/docker/stowage/c1/web');
  await expect(restarted.mount('other', ctx('other'))).rejects.toThrow(VolumeNotFoundError);
});
