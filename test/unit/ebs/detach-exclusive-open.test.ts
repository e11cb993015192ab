import { VolumeBusyError } from '../../../core/errors.js';
import { driverWorld, type DriverWorld } from './driver-world.js';

const ZONE = 'us-east-1a';

// Issue 15.6: our own mountinfo misses a mount made in another mount namespace (a container, a
// `nsenter` by hand); only the kernel's exclusive-open check sees every claim on the device.
describe('detach under a mount in another mount namespace', () => {
  let world: DriverWorld;
  beforeEach(() => {
    world = driverWorld(ZONE);
  });
  afterEach(() => world.ec2.mock.restore());

  const ctx = (ms = 3000) => ({ deadline: Date.now() + ms, log: world.log.child({ volume: 'data' }) });

  test('the device held elsewhere: not detached, and the refusal names the holder', async () => {
    const { ec2, host, logLines, makeDriver } = world;
    const driver = makeDriver();
    const id = ec2.addVolume('data', ZONE);
    await driver.mount('data', ctx());
    host.busyDevices.add(`/dev/nvme-${id}`);
    ec2.resetCalls();
    await driver.unmount('data', ctx());
    const refused = logLines.find((l) => l.level === 40 && l.volume === 'data' && /background/.test(String(l.msg)));
    const err = refused?.err as { type?: string; message?: string } | undefined;
    expect(err?.type).toBe(VolumeBusyError.name);
    expect(err?.message).toBe(
      `device /dev/nvme-${id} of volume data is held elsewhere (mounted at /srv/elsewhere in the mount namespace of pid 77 (postgres)); not detaching it`,
    );
    expect(ec2.sequence()).not.toContain('DetachVolume');
    await driver.stop();
  });

  test('a device nothing holds is detached after the exclusive open succeeded', async () => {
    const { ec2, host, makeDriver } = world;
    const driver = makeDriver();
    const id = ec2.addVolume('data', ZONE);
    await driver.mount('data', ctx());
    ec2.resetCalls();
    await driver.unmount('data', ctx());
    expect(host.calls).toContain(`deviceHeldBy /dev/nvme-${id}`);
    expect(ec2.sequence()).toContain('DetachVolume');
    await driver.stop();
  });
});
