import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { VolumeService } from '../../../plugin/volume-service.js';
import { RefcountStore } from '../../../plugin/refcounts.js';
import { silentLogger } from '../../../core/log.js';
import { HostError, PendingError, InvalidNameError, InvalidOptionError, StowageError, UnsupportedError, VolumeBusyError, VolumeConflictError, VolumeNotFoundError } from '../../../core/errors.js';
import type { VolumeOptions } from '../../../core/volume-options.js';
import { MemoryDriver } from './memory-driver.js';

describe('VolumeService', () => {
  let dir: string;
  let driver: MemoryDriver;
  let refcounts: RefcountStore;
  let service: VolumeService;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-svc-'));
    driver = new MemoryDriver();
    refcounts = new RefcountStore(dir, silentLogger);
    await refcounts.load(async () => true);
    service = new VolumeService({
      drivers: [driver], refcounts, log: silentLogger, defaultBacking: 'relocatable', mountTimeoutMs: 1000,
      unavailableBackings: { shared: 'set STOWAGE_EFS_ID' }, unclaimedGraceMs: 30,
    });
  });
  afterEach(async () => {
    service.close();
    await rm(dir, { recursive: true, force: true });
  });

  test.each(['', '.hidden', '-x', '../etc', 'a/b', 'a'.repeat(129), 'naïve', 'a b'])('refuses the name %j', async (name) => {
    await expect(service.create(name, {})).rejects.toBeInstanceOf(name === '' ? Error : InvalidNameError);
    expect(driver.calls).toEqual([]);
  });

  test('accepts names up to 128 characters', async () => {
    await service.create('a'.repeat(128), {});
    await service.create('db_1.data-x', {});
    expect(driver.volumes.size).toBe(2);
  });

  test('bad options create nothing', async () => {
    await expect(service.create('db', { size: 'huge' })).rejects.toBeInstanceOf(InvalidOptionError);
    expect(driver.calls).toEqual([]);
  });

  test("a Create beyond the operator's cost limits is refused naming the setting; one within them is made", async () => {
    const bounded = new VolumeService({
      drivers: [driver], refcounts, log: silentLogger, defaultBacking: 'relocatable', mountTimeoutMs: 1000, cost: { maxSizeGiB: 100, maxIops: 5000 },
    });
    await expect(bounded.create('big', { size: '101' })).rejects.toThrow(InvalidOptionError);
    await expect(bounded.create('big', { size: '101' })).rejects.toThrow('STOWAGE_MAX_SIZE_GIB=100');
    await expect(bounded.create('fast', { size: '100', iops: '5001' })).rejects.toThrow('STOWAGE_MAX_IOPS=5000');
    expect(driver.calls).toEqual([]);
    await bounded.create('ok', { size: '100', iops: '5000' });
    expect(driver.calls).toEqual(['create ok']);
    bounded.close();
  });

  test('a backing without a driver is refused with the reason', async () => {
    await expect(service.create('web', { backing: 'shared' })).rejects.toThrow(UnsupportedError);
    await expect(service.create('web', { backing: 'shared' })).rejects.toThrow('STOWAGE_EFS_ID');
  });

  test('a second Create is a no-op when the given options agree, a conflict when they differ', async () => {
    await service.create('db', { size: '20' });
    await service.create('db', {});
    await service.create('db', { size: '20' });
    await expect(service.create('db', { size: '30' })).rejects.toThrow(VolumeConflictError);
    await expect(service.create('db', { size: '30' })).rejects.toThrow('size=30 (volume has 20)');
    expect(driver.calls).toEqual(['create db']);
  });

  test('reference counts: the driver mounts once and unmounts after the last ID', async () => {
    await service.create('db', {});
    expect(await service.mount('db', 'id1')).toBe('/mnt/test/db');
    expect(await service.mount('db', 'id2')).toBe('/mnt/test/db');
    expect(await service.path('db')).toBe('/mnt/test/db');
    await service.unmount('db', 'unknown-id');
    await service.unmount('db', 'id1');
    expect(driver.calls).toEqual(['create db', 'mount db']);
    await service.unmount('db', 'id2');
    await service.unmount('db', 'id2');
    expect(driver.calls).toEqual(['create db', 'mount db', 'unmount db']);
    expect(await service.path('db')).toBe('');
  });

  test('concurrent Mounts of one volume reach the driver once', async () => {
    await service.create('db', {});
    driver.mountDelayMs = 30;
    const points = await Promise.all([service.mount('db', 'a'), service.mount('db', 'b'), service.mount('db', 'c')]);
    expect(new Set(points)).toEqual(new Set(['/mnt/test/db']));
    expect(driver.calls.filter((c) => c.startsWith('mount'))).toHaveLength(1);
    expect(refcounts.count('db')).toBe(3);
  });

  test('a Mount whose client went away leaves no reference and nothing mounted', async () => {
    await service.create('db', {});
    const controller = new AbortController();
    driver.mountDelayMs = 20;
    const mounting = service.mount('db', 'gone', controller.signal);
    controller.abort();
    await expect(mounting).rejects.toThrow('closed the connection');
    expect(refcounts.count('db')).toBe(0);
    expect(driver.calls).toEqual(['create db', 'mount db', 'unmount db']);
  });

  test('a failed unmount keeps the reference so it can be retried', async () => {
    await service.create('db', {});
    await service.mount('db', 'id1');
    driver.failUnmount = new HostError('umount: target is busy');
    await expect(service.unmount('db', 'id1')).rejects.toThrow('busy');
    expect(refcounts.count('db')).toBe(1);
    driver.failUnmount = undefined;
    await service.unmount('db', 'id1');
    expect(refcounts.count('db')).toBe(0);
  });

  test('Remove refuses a volume mounted here and a volume that does not exist', async () => {
    await service.create('db', {});
    await service.mount('db', 'id1');
    await expect(service.remove('db')).rejects.toBeInstanceOf(VolumeBusyError);
    await service.unmount('db', 'id1');
    await service.remove('db');
    await expect(service.remove('db')).rejects.toBeInstanceOf(VolumeNotFoundError);
    await expect(service.get('db')).rejects.toBeInstanceOf(VolumeNotFoundError);
  });

  test('Get and List show the mountpoint only where mounted here', async () => {
    await service.create('a', {});
    await service.create('b', {});
    await service.mount('a', 'id');
    const views = await service.list();
    expect(views.find((v) => v.name === 'a')).toMatchObject({ mountpoint: '/mnt/test/a', status: { mountedHere: true, references: 1 } });
    expect(views.find((v) => v.name === 'b')?.mountpoint).toBeUndefined();
    expect((await service.get('b')).createdAt).toBe('2026-11-26T07:00:00.000Z');
  });

  test('mount IDs are validated', async () => {
    await service.create('db', {});
    await expect(service.mount('db', '')).rejects.toThrow('ID is missing');
    await expect(service.mount('db', 42)).rejects.toThrow('ID is missing');
    await expect(service.mount('db', '../../x')).rejects.toThrow('invalid mount ID');
    expect(driver.calls).toEqual(['create db']);
  });

  test('a volume whose pending Mount is never claimed is let go after the grace time', async () => {
    await service.create('db', {});
    driver.failMount = new PendingError('still attaching');
    await expect(service.mount('db', 'a')).rejects.toBeInstanceOf(PendingError);
    await new Promise((r) => setTimeout(r, 80));
    expect(driver.calls).toEqual(['create db', 'mount db', 'unmount db']);
  });

  test('a pending Mount claimed by a later Mount is kept', async () => {
    await service.create('db', {});
    driver.failMount = new PendingError('still attaching');
    await expect(service.mount('db', 'a')).rejects.toBeInstanceOf(PendingError);
    await service.mount('db', 'b');
    await new Promise((r) => setTimeout(r, 80));
    expect(driver.calls).toEqual(['create db', 'mount db', 'mount db']);
    expect(refcounts.count('db')).toBe(1);
  });
});

// Issue 15.9 (invariant 10): dockerd calls Get before Create, so "no such volume" while a backing
// cannot be asked makes it create a duplicate; and one backing's outage must not stop the others.
describe('VolumeService with a backing that cannot be reached', () => {
  let dir: string;
  let ebs: MemoryDriver;
  let efs: MemoryDriver;
  let refcounts: RefcountStore;
  let service: VolumeService;
  const brownout = Object.assign(new Error('RequestLimitExceeded: Request limit exceeded.'), { name: 'RequestLimitExceeded' });

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-svc-'));
    ebs = new MemoryDriver('relocatable');
    efs = new MemoryDriver('shared');
    refcounts = new RefcountStore(dir, silentLogger);
    await refcounts.load(async () => true);
    service = new VolumeService({ drivers: [ebs, efs], refcounts, log: silentLogger, defaultBacking: 'shared', mountTimeoutMs: 1000 });
  });
  afterEach(async () => {
    service.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function refusal(request: Promise<unknown>): Promise<StowageError> {
    const err = await request.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(StowageError);
    return err as StowageError;
  }

  test.each(['get', 'mount', 'path'] as const)('%s of a name no reachable backing has: retryable, naming the backing and why, never "not found"', async (op) => {
    ebs.unreachable = brownout;
    const err = await refusal(op === 'mount' ? service.mount('db', 'id1') : service[op]('db'));
    expect(err).not.toBeInstanceOf(VolumeNotFoundError);
    expect(err.retryable).toBe(true);
    expect(err.context).toMatchObject({ volume: 'db', backing: 'relocatable' });
    expect(err.message).toBe('cannot tell whether volume db exists: backing relocatable did not answer (RequestLimitExceeded: Request limit exceeded.); retry');
    expect(refcounts.count('db')).toBe(0);
  });

  test('Get and Mount of a name a reachable backing has go on while another backing fails', async () => {
    await efs.create('web', { ...options('shared') });
    ebs.unreachable = brownout;
    expect((await service.get('web')).status.backing).toBe('shared');
    expect(await service.mount('web', 'id1')).toBe('/mnt/test/web');
    expect(efs.calls).toContain('mount web');
  });

  test('List answers what the reachable backings have', async () => {
    await efs.create('web', { ...options('shared') });
    await ebs.create('db', { ...options('relocatable') });
    ebs.unreachable = brownout;
    expect((await service.list()).map((v) => v.name)).toEqual(['web']);
    ebs.unreachable = undefined;
    expect((await service.list()).map((v) => v.name).sort()).toEqual(['db', 'web']);
  });

  test('List with no backing answering is an error, not an empty list', async () => {
    ebs.unreachable = brownout;
    efs.unreachable = brownout;
    const err = await refusal(service.list());
    expect(err.retryable).toBe(true);
  });

  test('one name in two backings: Get and Mount refuse, naming both', async () => {
    await ebs.create('db', { ...options('relocatable') });
    await efs.create('db', { ...options('shared') });
    for (const request of [service.get('db'), service.mount('db', 'id1')]) {
      const err = await refusal(request);
      expect(err).toBeInstanceOf(VolumeConflictError);
      expect(err.message).toBe('volume db exists twice: as relocatable and as shared; refusing to pick one (remove the one that is not wanted with the AWS tools)');
    }
    expect(ebs.calls.concat(efs.calls).filter((c) => c.startsWith('mount'))).toEqual([]);
  });
});

function options(backing: 'relocatable' | 'shared'): VolumeOptions {
  return { backing, size: 10, ebstype: 'gp3', iops: 3000, throughput: 125, encrypted: true, fs: 'ext4', mountopts: [], perfmode: 'generalpurpose', uid: 0, gid: 0, mode: '0755' };
}
