/**
 * Issue 15's ways to lose data that a fake world shows exactly; each test failed on the code before
 * its fix. The fake host is as unkind as Linux: a device found by its requested name (Xen) may be a
 * different disk, and a probe may see no signature on a disk that holds data.
 */
import { PendingError, VolumeBusyError, VolumeConflictError, DataSafetyError } from '../../../core/errors.js';
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

test('9: two live volumes carrying one name: Get and Mount refuse, naming both; nothing is attached', async () => {
  const { ec2 } = world;
  const first = ec2.addVolume('twin', ZONE);
  const second = ec2.addVolume('twin', 'us-east-1b');
  for (const call of [() => driver.get('twin', ctx('twin')), () => driver.mount('twin', ctx('twin'))]) {
    const err = await call().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VolumeConflictError);
    expect(String(err)).toContain(first);
    expect(String(err)).toContain(second);
  }
  expect(ec2.sequence()).not.toContain('AttachVolume');
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

describe('10: fencing judges a holder by its heartbeat changing, on the judge\'s own clock', () => {
  test('a holder whose clock runs ten minutes slow but keeps beating is never fenced', async () => {
    const { ec2 } = world;
    const beat = (at: number) => [{ Key: 'stowage:heartbeat', Value: String(Math.floor(at / 1000)) }];
    let slowClock = Date.now() - 600_000;
    ec2.addInstance(OTHER, ZONE, 'running', beat(slowClock));
    const beating = setInterval(() => {
      slowClock += 1000;
      ec2.instances.get(OTHER)!.Tags = beat(slowClock);
    }, 100);
    const id = ec2.addVolume('data', ZONE);
    ec2.attachNow(id, OTHER, '/dev/xvdba');
    driver = world.makeDriver({ fenceAfterMs: 300 });
    try {
      const err = await driver.mount('data', ctx('data', 1500)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(VolumeBusyError);
      expect(ec2.sequence()).not.toContain('DetachVolume');
    } finally {
      clearInterval(beating);
    }
  });

  test('a heartbeat from the future that never changes is stale once unchanged for STOWAGE_FENCE_AFTER', async () => {
    const { ec2, logLines } = world;
    ec2.addInstance(OTHER, ZONE, 'running', [{ Key: 'stowage:heartbeat', Value: String(Math.floor(Date.now() / 1000) + 3600) }]);
    const id = ec2.addVolume('data', ZONE);
    ec2.attachNow(id, OTHER, '/dev/xvdba');
    driver = world.makeDriver({ fenceAfterMs: 300 });
    await expect(driver.mount('data', ctx('data', 3000))).resolves.toBe('/mnt/stowage/data');
    expect(ec2.input('DetachVolume')).toMatchObject({ VolumeId: id, InstanceId: OTHER, Force: true });
    expect(logLines.find((l) => /FORCE-DETACHING/.test(String(l.msg)))?.reason).toMatch(/has not changed for/);
  });

  test('STOWAGE_FENCE=off never force-detaches, =stopped only a stopped or terminated holder', async () => {
    const { ec2 } = world;
    ec2.addInstance(OTHER, ZONE, 'stopped', [{ Key: 'stowage:heartbeat', Value: '1' }]);
    const id = ec2.addVolume('data', ZONE);
    ec2.attachNow(id, OTHER, '/dev/xvdba');
    driver = world.makeDriver({ fenceAfterMs: 100, fenceMode: 'off' });
    await expect(driver.mount('data', ctx('data', 500))).rejects.toBeInstanceOf(VolumeBusyError);
    expect(ec2.sequence()).not.toContain('DetachVolume');
    await driver.stop();
    ec2.instances.get(OTHER)!.State = { Name: 'running' };
    driver = world.makeDriver({ fenceAfterMs: 100, fenceMode: 'stopped' });
    await expect(driver.mount('data', ctx('data', 800))).rejects.toBeInstanceOf(VolumeBusyError);
    expect(ec2.sequence()).not.toContain('DetachVolume');
  });

  test('a node that finds it lost a volume it had mounted unmounts it, loudly', async () => {
    const { ec2, host, logLines } = world;
    ec2.addInstance(OTHER, ZONE, 'running', []);
    const id = ec2.addVolume('data', ZONE);
    driver = world.makeDriver({ heartbeatIntervalMs: 50, cacheTtlMs: 10, lossConfirmMs: 150 });
    driver.start();
    await driver.mount('data', ctx('data'));
    // Another node fenced this one: the volume is attached there now.
    ec2.volumes.get(id)!.Attachments = [{ VolumeId: id, InstanceId: OTHER, Device: '/dev/xvdbb', State: 'attached' }];
    for (let i = 0; i < 40 && (await host.mountAt('/mnt/stowage/data')); i++) await new Promise((r) => setTimeout(r, 50));
    expect(await host.mountAt('/mnt/stowage/data')).toBeUndefined();
    expect(logLines.some((l) => l.level === 50 && l.volume === 'data' && /LOST/.test(String(l.msg)))).toBe(true);
  });
});
