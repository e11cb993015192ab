/**
 * Issue 17.1, 17.6, 17.7 on the EBS driver: the initialization rate goes with every CreateVolume
 * from a snapshot and never with a blank one; filesystems grow to a grown device on the node holding
 * the volume and at Mount; a fresh volume's root takes its owner and mode once.
 */
import { CreateTagsCommand } from '@aws-sdk/client-ec2';
import { delay } from '../../../core/delay.js';
import type { Logger } from '../../../core/log.js';
import type { EbsDriver } from '../../../drivers/ebs/ebs-driver.js';
import { driverWorld, OTHER } from './driver-world.js';
import type { FakeEc2 } from './fake-ec2.js';
import type { FakeHost } from './fake-host.js';
import { gp3Options } from '../../helpers/volume-options.js';

const HERE = 'us-east-1a';
const THERE = 'us-east-1c';
const GiB = 1024 ** 3;
const OPTIONS = gp3Options(10);

let ec2: FakeEc2;
let host: FakeHost;
let log: Logger;
let driver: EbsDriver;
const ctx = (name: string) => ({ deadline: Date.now() + 3000, log: log.child({ volume: name }) });
const tagsOf = (id: string) => Object.fromEntries((ec2.volumes.get(id)?.Tags ?? []).map((t) => [t.Key, t.Value]));
const createTagCalls = () => ec2.mock.commandCalls(CreateTagsCommand).map((c) => c.args[0].input.Tags ?? []);

beforeEach(() => {
  const world = driverWorld(HERE);
  ({ ec2, host, log } = world);
  ec2.addInstance(OTHER, THERE);
  driver = world.makeDriver({ growCheckMs: 10 });
});
afterEach(async () => {
  await driver.stop();
  ec2.mock.restore();
});

describe('initrate (17.6)', () => {
  test('a Create from a snapshot sends VolumeInitializationRate; a blank Create with the option does not', async () => {
    await driver.create('restored', { ...OPTIONS, snapshot: 'snap-0123456789abcdef0', initrate: 200 }, ctx('restored'));
    expect(ec2.input('CreateVolume')).toMatchObject({ SnapshotId: 'snap-0123456789abcdef0', VolumeInitializationRate: 200 });
    await driver.create('blank', { ...OPTIONS, initrate: 200 }, ctx('blank'));
    const blank = ec2.input('CreateVolume', 1);
    expect(blank.SnapshotId).toBeUndefined();
    expect(blank).not.toHaveProperty('VolumeInitializationRate');
  });

  test('a cross-zone move restores its copy at the volume\'s rate; a never-attached volume is re-created blank, without it', async () => {
    ec2.addVolume('db1', THERE, {}, [{ Key: 'stowage:initrate', Value: '300' }]);
    await driver.mount('db1', ctx('db1'));
    const copy = ec2.input('CreateVolume');
    expect(copy.SnapshotId).toMatch(/^snap-/);
    expect(copy.VolumeInitializationRate).toBe(300);

    ec2.addVolume('fresh', THERE, {}, [{ Key: 'stowage:initrate', Value: '300' }, { Key: 'stowage:blank', Value: 'true' }]);
    await driver.mount('fresh', ctx('fresh'));
    const blank = ec2.input('CreateVolume', 1);
    expect(blank.SnapshotId).toBeUndefined();
    expect(blank).not.toHaveProperty('VolumeInitializationRate');
  });
});

describe('filesystem growth (17.1)', () => {
  test('the first Mount records the filesystem size with the formatted mark, in the same CreateTags', async () => {
    const id = ec2.addVolume('data', HERE);
    await driver.mount('data', ctx('data'));
    expect(createTagCalls()).toHaveLength(1);
    expect(tagsOf(id)).toMatchObject({ 'stowage:formatted': 'true', 'stowage:fs-size-mib': '1024' });
  });

  test('the node holding the volume notices a grown device by itself: it grows the filesystem online and records the size', async () => {
    const id = ec2.addVolume('data', HERE);
    driver.start();
    await driver.mount('data', ctx('data'));
    const device = `/dev/nvme-${id}`;
    host.deviceBytes.set(device, 3 * GiB);
    for (let i = 0; i < 200 && tagsOf(id)['stowage:fs-size-mib'] !== '3072'; i++) await delay(10);
    expect(host.calls.filter((c) => c.startsWith('growFilesystem'))).toEqual([`growFilesystem ${device} ext4 /mnt/stowage/data`]);
    expect(tagsOf(id)['stowage:fs-size-mib']).toBe('3072');
    // Grown once: later checks see the same device size and do nothing.
    await delay(50);
    expect(host.calls.filter((c) => c.startsWith('growFilesystem'))).toHaveLength(1);
  });

  test('an ext4 volume grown while detached is grown offline by its next Mount, before the mount; a grow that fails leaves it mounted', async () => {
    const id = ec2.addVolume('data', HERE, {}, [{ Key: 'stowage:formatted', Value: 'true' }]);
    const device = `/dev/nvme-${id}`;
    host.filesystems.set(device, 'ext4');
    host.deviceBytes.set(device, 2 * GiB);
    await driver.mount('data', ctx('data'));
    const calls = host.calls.filter((c) => /^(mount|growFilesystem)/.test(c));
    expect(calls).toEqual([`growFilesystem ${device} ext4`, `mount ${device} /mnt/stowage/data ext4`]);
    expect(tagsOf(id)['stowage:fs-size-mib']).toBe('2048');

    const other = ec2.addVolume('other', HERE, {}, [{ Key: 'stowage:formatted', Value: 'true' }]);
    host.filesystems.set(`/dev/nvme-${other}`, 'ext4');
    host.deviceBytes.set(`/dev/nvme-${other}`, 2 * GiB);
    host.growFails.add(`/dev/nvme-${other}`);
    await expect(driver.mount('other', ctx('other'))).resolves.toBe('/mnt/stowage/other');
  });
});

describe('root owner (17.7)', () => {
  test('set after the first mkfs and mount; a later Mount of the formatted volume leaves it alone', async () => {
    ec2.addVolume('pg', HERE, {}, [{ Key: 'stowage:root-owner', Value: '999:999:0700' }]);
    await driver.mount('pg', ctx('pg'));
    const calls = host.calls.filter((c) => /^(mkfs|mount|setRootOwner)/.test(c));
    expect(calls.map((c) => c.split(' ')[0])).toEqual(['mkfs', 'mount', 'setRootOwner']);
    expect(host.rootOwners.get('/mnt/stowage/pg')).toEqual({ uid: 999, gid: 999, mode: '0700' });

    await driver.unmount('pg', ctx('pg'));
    host.rootOwners.clear();
    await driver.mount('pg', ctx('pg'));
    expect(host.rootOwners.size).toBe(0);
  });
});
