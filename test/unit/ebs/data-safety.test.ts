/**
 * Issue 15's ways to lose data that a fake world shows exactly; each test failed on the code before
 * its fix. The fake host is as unkind as Linux: a device found by its requested name (Xen) may be a
 * different disk, and a probe may see no signature on a disk that holds data.
 */
import { PendingError, VolumeBusyError, DataSafetyError } from '../../../core/errors.js';
import type { EbsDriver } from '../../../drivers/ebs/ebs-driver.js';
import { driverWorld, ME, OTHER, type DriverWorld } from './driver-world.js';

const ZONE = 'us-east-1a';
const THIRD = 'i-000000000000000cc';
let world: DriverWorld;
let driver: EbsDriver;

const ctx = (name: string, ms = 3000) => ({ deadline: Date.now() + ms, log: world.log.child({ volume: name }) });
const heartbeat = () => [{ Key: 'stowage:heartbeat', Value: String(Math.floor(Date.now() / 1000)) }];

beforeEach(() => {
  world = driverWorld(ZONE);
  driver = world.makeDriver();
});
afterEach(async () => {
  await driver.stop();
  world.ec2.mock.restore();
});

test('4: an attachment is ours only if its instance is ours — another node\'s attachment after a wait is never adopted', async () => {
  const { ec2, host } = world;
  ec2.addInstance(OTHER, ZONE, 'running', heartbeat());
  ec2.addInstance(THIRD, ZONE, 'running', heartbeat());
  const id = ec2.addVolume('data', ZONE);
  ec2.attachNow(id, OTHER, '/dev/xvdba');
  // The holder lets go, and a third node attaches the volume before this one does.
  setTimeout(() => (ec2.volumes.get(id)!.Attachments = [{ VolumeId: id, InstanceId: THIRD, Device: '/dev/xvdbz', State: 'attached' }]), 50);
  // On Xen the requested name is a fallback: here it names another local disk.
  host.byName.set('/dev/xvdbz', '/dev/xvdbz');
  const err = await driver.mount('data', ctx('data', 1000)).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(VolumeBusyError);
  expect((err as VolumeBusyError).context).toMatchObject({ instance: THIRD });
  expect(host.calls.filter((c) => /^(mkfs|mount|probe)/.test(c))).toEqual([]);
});

test('5: a volume marked formatted is never formatted, even when the probe sees no signature', async () => {
  const { ec2, host } = world;
  const id = ec2.addVolume('data', ZONE, {}, [{ Key: 'stowage:formatted', Value: 'true' }]);
  host.blankProbe.add(`/dev/nvme-${id}`);
  const err = await driver.mount('data', ctx('data')).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(DataSafetyError);
  expect(String(err)).toMatch(/formatted before/);
  expect(host.calls.filter((c) => c.startsWith('mkfs'))).toEqual([]);
});

test('5: a volume made from a snapshot, or by a move, is never formatted', async () => {
  const { ec2, host } = world;
  const restored = ec2.addVolume('restored', ZONE, { SnapshotId: 'snap-0123456789abcdef0' });
  const moved = ec2.addVolume('moved', ZONE, {}, [{ Key: 'stowage:moved-from', Value: 'vol-0000000000000dead' }]);
  for (const id of [restored, moved]) host.blankProbe.add(`/dev/nvme-${id}`);
  for (const name of ['restored', 'moved']) {
    await expect(driver.mount(name, ctx(name))).rejects.toBeInstanceOf(DataSafetyError);
  }
  expect(host.calls.filter((c) => c.startsWith('mkfs'))).toEqual([]);
});

test('5: the first mkfs puts the formatted mark on the volume before it is mounted', async () => {
  const { ec2, host } = world;
  const id = ec2.addVolume('data', ZONE);
  await driver.mount('data', ctx('data'));
  expect(host.calls.some((c) => c.startsWith('mkfs'))).toBe(true);
  const tags = ec2.volumes.get(id)!.Tags ?? [];
  expect(tags).toContainEqual({ Key: 'stowage:formatted', Value: 'true' });
  const sequence = ec2.sequence();
  expect(sequence.lastIndexOf('CreateTags')).toBeGreaterThan(sequence.indexOf('AttachVolume'));
});

test('issue 16.2: tags are input — a mount option off the allow-list, or a forged generation, keeps the volume from being mounted; Get still shows it', async () => {
  const { ec2, host } = world;
  ec2.addVolume('forged', ZONE, {}, [{ Key: 'stowage:mountopts', Value: 'noatime,exec,nobarrier' }, { Key: 'stowage:generation', Value: '1e9' }]);
  const err = await driver.mount('forged', ctx('forged')).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(DataSafetyError);
  expect(String(err)).toMatch(/stowage:mountopts="noatime,exec,nobarrier".*allowed for fs=ext4/);
  expect(String(err)).toMatch(/stowage:generation="1e9"/);
  expect(ec2.sequence()).not.toContain('AttachVolume');
  expect(host.calls.filter((c) => c.startsWith('mount'))).toEqual([]);
  const info = await driver.get('forged', ctx('forged'));
  expect(info?.status.tagProblems).toMatch(/mountopts/);
});

test('12: an Unmount waits for a Mount in flight only within its own deadline', async () => {
  const { ec2 } = world;
  ec2.addVolume('data', ZONE);
  ec2.stuckDevices.add('/dev/xvdba');
  driver = world.makeDriver({ stuckAttachMs: 60_000 });
  await expect(driver.mount('data', ctx('data', 50))).rejects.toBeInstanceOf(PendingError);
  const outcome = await Promise.race([
    driver.unmount('data', ctx('data', 200)).then(() => 'unmounted', (e: unknown) => e),
    new Promise((resolve) => setTimeout(() => resolve('still waiting after 2 s'), 2000)),
  ]);
  expect(outcome).toBeInstanceOf(PendingError);
  expect(String(outcome)).toMatch(/a mount of data is still in progress/);
  ec2.stuckDevices.clear();
});

test('unkind fake: a device found by its requested name is whatever disk has that name', async () => {
  world.host.byName.set('/dev/xvdq', '/dev/xvdq');
  expect(await world.host.findDevice('vol-0000000000000abcd', '/dev/xvdq')).toBe('/dev/xvdq');
  expect(ME).toBeDefined();
});
