import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import {
  CreateAccessPointCommand,
  DeleteAccessPointCommand,
  DescribeAccessPointsCommand,
  DescribeMountTargetsCommand,
  EFSClient,
  EFSServiceException,
  type MountTargetDescription,
} from '@aws-sdk/client-efs';
import { mockClient } from 'aws-sdk-client-mock';
import { CallCounter } from '../../../aws/call-counter.js';
import { createEfsDriver, type EfsDriverDeps } from '../../../drivers/efs/efs-driver.js';
import { createNfsMounter } from '../../../drivers/shared/mounter.js';
import type { SharedDriver } from '../../../drivers/shared/share-driver.js';
import { CloudError, PendingError, UnsupportedError, VolumeNotFoundError } from '../../../core/errors.js';
import { createLogger, type Logger } from '../../../core/log.js';
import type { VolumeOptions } from '../../../core/volume-options.js';
import { RecordingHost } from './recording-host.js';

const FS = 'fs-0123456789abcdef0';
const MAXIO = 'fs-0fedcba9876543210';
const EFS_OPTIONS = ['nfsvers=4.1', 'rsize=1048576', 'wsize=1048576', 'hard', 'timeo=600', 'retrans=2', 'noresvport'];
/** A share's root is mounted for management only; a volume may run programs, never set-id ones or devices. */
const ROOT_OPTIONS = [...EFS_OPTIONS, 'nosuid', 'nodev', 'noexec'];
const VOLUME_OPTIONS = [...EFS_OPTIONS, 'nosuid', 'nodev'];
const ROOT_FLAGS = ['nosuid', 'nodev', 'noexec'];
const VOLUME_FLAGS = ['nosuid', 'nodev'];
const SHARED: VolumeOptions = {
  backing: 'shared', size: 10, ebstype: 'gp3', encrypted: true, fs: 'ext4', mountopts: [], perfmode: 'generalpurpose', uid: 1000, gid: 2000, mode: '0750',
};

const efsMock = mockClient(EFSClient);
let host: RecordingHost;
let counter: CallCounter;
let mountRoot: string;
let logLines: Record<string, unknown>[];
let log: Logger;
let driver: SharedDriver;

function efsError(code: string, status = 400): EFSServiceException {
  return new EFSServiceException({ name: code, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status, requestId: `req-${code}` }, message: `${code} happened` });
}

function target(zone: string, ip: string, state = 'available'): MountTargetDescription {
  return { MountTargetId: `fsmt-${zone}`, SubnetId: `subnet-${zone}`, FileSystemId: FS, AvailabilityZoneName: zone, IpAddress: ip, LifeCycleState: state as MountTargetDescription['LifeCycleState'] };
}

const THREE_ZONES = [target('us-east-1a', '10.0.1.10'), target('us-east-1b', '10.0.2.10'), target('us-east-1c', '10.0.3.10')];

function makeDriver(overrides: Partial<EfsDriverDeps> = {}): SharedDriver {
  return createEfsDriver({
    efs: new EFSClient({ region: 'us-east-1' }), counter, host, mounter: createNfsMounter(host), zone: 'us-east-1b', cluster: 'c1', mountRoot,
    fileSystems: { generalpurpose: FS }, mode: 'directory', sharedDelete: false, pollInitialMs: 5, cacheTtlMs: 60_000,
    ...overrides,
  });
}

function ctx(name: string, ms = 3000) {
  return { deadline: Date.now() + ms, log: log.child({ volume: name }) };
}

beforeEach(async () => {
  efsMock.reset();
  efsMock.on(DescribeMountTargetsCommand).resolves({ MountTargets: THREE_ZONES });
  host = new RecordingHost();
  counter = new CallCounter();
  mountRoot = await mkdtemp(join(tmpdir(), 'stowage-efs-unit-'));
  logLines = [];
  log = createLogger('debug', new Writable({ write: (chunk, _enc, done) => { logLines.push(JSON.parse(String(chunk))); done(); } }));
  driver = makeDriver();
});
afterEach(async () => {
  await rm(mountRoot, { recursive: true, force: true });
});

describe('directory mode', () => {
  test('Create mounts the file system root once through this zone\'s mount target and makes /stowage/<cluster>/<name> with uid, gid, mode', async () => {
    await driver.create('v1', SHARED, ctx('v1'));
    await driver.create('v2', { ...SHARED, uid: 0, gid: 0, mode: '0777' }, ctx('v2'));
    expect(host.nfsMounts).toEqual([{ source: '10.0.2.10:/', target: join(mountRoot, '.shares', FS), options: ROOT_OPTIONS, type: 'nfs4' }]);
    const st = await stat(join(mountRoot, '.shares', FS, 'stowage/c1/v1'));
    expect([st.uid, st.gid, (st.mode & 0o7777).toString(8)]).toEqual([1000, 2000, '750']);
    expect(((await stat(join(mountRoot, '.shares', FS, 'stowage/c1/v2'))).mode & 0o7777).toString(8)).toBe('777');
    // The mount target is asked for once and remembered.
    expect(counter.count('DescribeMountTargets')).toBe(1);
    expect(logLines.filter((l) => l.msg === 'volume directory ready').map((l) => l.volume)).toEqual(['v1', 'v2']);
  });

  test('Mount mounts the volume\'s subdirectory over NFS 4.1 with AWS\'s options, exactly', async () => {
    await driver.create('v1', SHARED, ctx('v1'));
    expect(await driver.mount('v1', ctx('v1'))).toBe(join(mountRoot, 'v1'));
    expect(host.nfsMounts.at(-1)).toEqual({ source: '10.0.2.10:/stowage/c1/v1', target: join(mountRoot, 'v1'), options: VOLUME_OPTIONS, type: 'nfs4' });
  });

  test('the mount target is the one in this node\'s zone, whatever the order EFS lists them in', async () => {
    efsMock.on(DescribeMountTargetsCommand).resolves({ MountTargets: [...THREE_ZONES].reverse() });
    for (const [zone, ip] of [['us-east-1a', '10.0.1.10'], ['us-east-1c', '10.0.3.10']] as const) {
      const d = makeDriver({ zone, mountRoot: join(mountRoot, zone) });
      await d.create('v1', SHARED, ctx('v1'));
      expect(host.nfsMounts.at(-1)!.source).toBe(`${ip}:/`);
    }
  });

  test('no mount target in this zone: a clear error naming the zone and where targets exist; nothing mounted', async () => {
    efsMock.on(DescribeMountTargetsCommand).resolves({ MountTargets: [THREE_ZONES[0]!, THREE_ZONES[2]!] });
    const err = await driver.create('v1', SHARED, ctx('v1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CloudError);
    expect((err as CloudError).code).toBe('NoMountTargetInZone');
    expect((err as Error).message).toMatch(/no mount target in this node's zone us-east-1b \(it has mount targets in us-east-1a, us-east-1c\)/);
    expect(host.nfsMounts).toEqual([]);
  });

  test('a file system that does not exist: the error names it and the setting to check', async () => {
    efsMock.on(DescribeMountTargetsCommand).rejects(efsError('FileSystemNotFound', 404));
    const err = await driver.create('v1', SHARED, ctx('v1')).catch((e: unknown) => e);
    expect((err as CloudError).code).toBe('FileSystemNotFound');
    expect((err as Error).message).toMatch(new RegExp(`${FS} does not exist.*STOWAGE_EFS_ID`));
    expect(counter.count('DescribeMountTargets')).toBe(1);
    // Get and List do not fail for it (a broken EFS must not break relocatable volumes); they warn.
    expect(await driver.get('v1', ctx('v1'))).toBeUndefined();
    expect(await driver.list(ctx('v1'))).toEqual([]);
    expect(logLines.some((l) => l.level === 40 && /share unreachable/.test(String(l.msg)))).toBe(true);
  });

  test('a mount target still creating is waited for; past the deadline the answer is pending', async () => {
    efsMock.on(DescribeMountTargetsCommand)
      .resolvesOnce({ MountTargets: [target('us-east-1b', '10.0.2.10', 'creating')] })
      .resolvesOnce({ MountTargets: [target('us-east-1b', '10.0.2.10', 'creating')] })
      .resolves({ MountTargets: [target('us-east-1b', '10.0.2.10')] });
    await driver.create('v1', SHARED, ctx('v1'));
    expect(counter.count('DescribeMountTargets')).toBe(3);

    efsMock.on(DescribeMountTargetsCommand).resolves({ MountTargets: [target('us-east-1b', '10.0.2.10', 'creating')] });
    const late = makeDriver({ mountRoot: join(mountRoot, 'late'), pollInitialMs: 1000 });
    await expect(late.create('v2', SHARED, ctx('v2', 500))).rejects.toThrow(PendingError);
  });

  test('perfmode=maxio goes on STOWAGE_EFS_MAXIO_ID, and without it Create says which setting is missing', async () => {
    await expect(driver.create('fast', { ...SHARED, perfmode: 'maxio' }, ctx('fast'))).rejects.toThrow(
      new UnsupportedError('backing=shared with perfmode=maxio needs an EFS file system: set STOWAGE_EFS_MAXIO_ID on every node (an fs-… id)'),
    );
    efsMock.on(DescribeMountTargetsCommand, { FileSystemId: MAXIO }).resolves({ MountTargets: [{ ...target('us-east-1b', '10.0.2.99'), FileSystemId: MAXIO }] });
    const both = makeDriver({ fileSystems: { generalpurpose: FS, maxio: MAXIO } });
    await both.create('fast', { ...SHARED, perfmode: 'maxio' }, ctx('fast'));
    expect(host.nfsMounts.at(-1)).toMatchObject({ source: '10.0.2.99:/', target: join(mountRoot, '.shares', MAXIO) });
    expect(await both.get('fast', ctx('fast'))).toMatchObject({ backing: 'shared', options: { perfmode: 'maxio' }, status: { fileSystemId: MAXIO, uid: 1000, gid: 2000, mode: '0750' } });
  });

  test('Get and List show the volume with its owner, mode and what Remove will do; a repeated Create adopts the directory', async () => {
    await driver.create('v1', SHARED, ctx('v1'));
    const info = await driver.get('v1', ctx('v1'));
    expect(info).toMatchObject({
      name: 'v1', backing: 'shared',
      status: { fileSystemId: FS, efsMode: 'directory', path: '/stowage/c1/v1', uid: 1000, gid: 2000, mode: '0750', onRemove: expect.stringMatching(/data kept under \/stowage\/c1\/\.removed/) },
    });
    expect(info!.createdAt).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect((await driver.list(ctx('list'))).map((v) => v.name)).toEqual(['v1']);
    // The directory's owner and mode are not options to compare: containers may change them.
    expect(info!.options).toEqual({ perfmode: 'generalpurpose' });
    await driver.create('v1', { ...SHARED, mode: '0700' }, ctx('v1'));
    expect((await driver.get('v1', ctx('v1')))!.status.mode).toBe('0750');
  });

  test('Remove keeps the data under .removed/ by default, and deletes it with STOWAGE_SHARED_DELETE=true', async () => {
    const root = join(mountRoot, '.shares', FS);
    await driver.create('keep', SHARED, ctx('keep'));
    await writeFile(join(root, 'stowage/c1/keep/data.txt'), 'precious');
    await driver.remove('keep', ctx('keep'));
    expect(await driver.get('keep', ctx('keep'))).toBeUndefined();
    const kept = await readdir(join(root, 'stowage/c1/.removed'));
    expect(kept).toHaveLength(1);
    expect(kept[0]).toMatch(/^keep-/);
    expect(logLines.some((l) => l.volume === 'keep' && /data is kept/.test(String(l.msg)))).toBe(true);

    const deleting = makeDriver({ sharedDelete: true });
    await deleting.create('gone', SHARED, ctx('gone'));
    await writeFile(join(root, 'stowage/c1/gone/data.txt'), 'scratch');
    await deleting.remove('gone', ctx('gone'));
    expect((await readdir(join(root, 'stowage/c1/.removed'))).filter((n) => n.startsWith('gone'))).toEqual([]);
    expect(await readdir(join(root, 'stowage/c1'))).toEqual(['.removed']);
    await expect(deleting.remove('gone', ctx('gone'))).rejects.toThrow(VolumeNotFoundError);
  });

  test('Unmount bounds umount by a timeout and falls back to umount -l (a hung NFS server)', async () => {
    await driver.create('v1', SHARED, ctx('v1'));
    await driver.mount('v1', ctx('v1'));
    await driver.unmount('v1', ctx('v1', 60_000));
    expect(host.unmounts).toEqual([{ target: join(mountRoot, 'v1'), options: { timeoutMs: 20_000, lazyAfterTimeout: true } }]);
  });
});

describe('access point mode', () => {
  const AP = 'fsap-0123456789abcdef0';
  const token = createHash('sha256').update('c1/v1/0').digest('hex');
  const described = (state = 'available') => ({
    AccessPointId: AP, FileSystemId: FS, LifeCycleState: state as 'available',
    PosixUser: { Uid: 1000, Gid: 2000 },
    RootDirectory: { Path: '/stowage/c1/v1', CreationInfo: { OwnerUid: 1000, OwnerGid: 2000, Permissions: '0750' } },
    Tags: [{ Key: 'stowage:cluster', Value: 'c1' }, { Key: 'stowage:volume', Value: 'v1' }, { Key: 'stowage:backing', Value: 'shared' }],
  });

  beforeEach(() => {
    driver = makeDriver({ mode: 'accesspoint' });
  });

  test('Create makes an access point with a client token from cluster + name, PosixUser, RootDirectory with CreationInfo and our tags', async () => {
    efsMock.on(DescribeAccessPointsCommand).resolves({ AccessPoints: [] });
    efsMock.on(CreateAccessPointCommand).resolves(described('creating'));
    await driver.create('v1', SHARED, ctx('v1'));
    expect(efsMock.commandCalls(CreateAccessPointCommand).map((c) => c.args[0].input)).toEqual([{
      ClientToken: token,
      FileSystemId: FS,
      PosixUser: { Uid: 1000, Gid: 2000 },
      RootDirectory: { Path: '/stowage/c1/v1', CreationInfo: { OwnerUid: 1000, OwnerGid: 2000, Permissions: '0750' } },
      Tags: [
        { Key: 'stowage:cluster', Value: 'c1' }, { Key: 'stowage:volume', Value: 'v1' }, { Key: 'stowage:backing', Value: 'shared' },
        { Key: 'Name', Value: 'stowage-c1-v1' },
      ],
    }]);
    expect(counter.snapshot()).toEqual({ DescribeAccessPoints: { ok: 1, throttled: 0, error: 0 }, CreateAccessPoint: { ok: 1, throttled: 0, error: 0 } });
  });

  test('an access point that exists (another node made it) is adopted, not created again', async () => {
    efsMock.on(DescribeAccessPointsCommand).resolves({ AccessPoints: [described(), { ...described(), AccessPointId: 'fsap-other', Tags: [{ Key: 'stowage:cluster', Value: 'c2' }, { Key: 'stowage:volume', Value: 'v1' }] }] });
    await driver.create('v1', SHARED, ctx('v1'));
    expect(efsMock.commandCalls(CreateAccessPointCommand)).toHaveLength(0);
    expect((await driver.list(ctx('list'))).map((v) => [v.name, v.status.accessPoint])).toEqual([['v1', AP]]);
  });

  test('the access point limit: a clear error that says what to do', async () => {
    efsMock.on(DescribeAccessPointsCommand).resolves({ AccessPoints: [] });
    efsMock.on(CreateAccessPointCommand).rejects(efsError('AccessPointLimitExceeded', 403));
    const err = await driver.create('v1', SHARED, ctx('v1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CloudError);
    expect((err as CloudError).code).toBe('AccessPointLimitExceeded');
    expect((err as Error).message).toMatch(/as many access points as EFS allows.*STOWAGE_EFS_MODE=directory/);
    expect(counter.count('CreateAccessPoint')).toBe(1);
  });

  test('Mount goes through the EFS mount helper: mount -t efs -o tls,accesspoint=…,mounttargetip=<this zone> fs:/, after the holder record on the root', async () => {
    efsMock.on(DescribeAccessPointsCommand).resolvesOnce({ AccessPoints: [described('creating')] }).resolves({ AccessPoints: [described()] });
    await driver.mount('v1', ctx('v1'));
    const root = join(mountRoot, '.shares', FS);
    expect(host.nfsMounts).toEqual([{ source: '10.0.2.10:/', target: root, options: ROOT_OPTIONS, type: 'nfs4' }, {
      source: `${FS}:/`, target: join(mountRoot, 'v1'), type: 'efs',
      options: ['tls', `accesspoint=${AP}`, 'mounttargetip=10.0.2.10', ...VOLUME_OPTIONS],
    }]);
    // creating → available: asked again after a pause
    expect(counter.count('DescribeAccessPoints')).toBe(2);
  });

  test('Remove moves the data aside (through the file system root) then deletes the access point; a gone access point is not an error', async () => {
    efsMock.on(DescribeAccessPointsCommand).resolves({ AccessPoints: [described()] });
    efsMock.on(DeleteAccessPointCommand).rejects(efsError('AccessPointNotFound', 404));
    await driver.remove('v1', ctx('v1'));
    expect(host.nfsMounts).toEqual([{ source: '10.0.2.10:/', target: join(mountRoot, '.shares', FS), options: ROOT_OPTIONS, type: 'nfs4' }]);
    expect(efsMock.commandCalls(DeleteAccessPointCommand).map((c) => c.args[0].input)).toEqual([{ AccessPointId: AP }]);
  });
});
