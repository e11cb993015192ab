import { CreateSnapshotCommand, DetachVolumeCommand } from '@aws-sdk/client-ec2';
import { ec2Error } from '../aws/ec2-error.js';
import { driverWorld, type DriverWorld } from './driver-world.js';

const ZONE = 'us-east-1a';

// Invariant 6, started early (issue 17.4): the snapshot on unmount starts once the umount flushed
// the filesystem and the exclusive open found the device free, before the DetachVolume, so EBS's
// fixed cost per snapshot runs while EC2 detaches; it is recorded before the Unmount answers.
describe('snapshot on unmount', () => {
  let world: DriverWorld;
  beforeEach(() => {
    world = driverWorld(ZONE);
  });
  afterEach(() => world.ec2.mock.restore());

  const ctx = (ms = 3000) => ({ deadline: Date.now() + ms, log: world.log.child({ volume: 'data' }) });
  const tagsOf = (tags: { Key?: string; Value?: string }[] | undefined) => Object.fromEntries((tags ?? []).map((t) => [t.Key, t.Value]));

  test('starts after the umount and the exclusive open, before the DetachVolume, covering this attachment; recorded when the Unmount answers', async () => {
    const { ec2, host, makeDriver } = world;
    const driver = makeDriver({ snapshotOnUnmount: true });
    const id = ec2.addVolume('data', ZONE);
    await driver.mount('data', ctx());
    const lastAttach = tagsOf(ec2.volumes.get(id)!.Tags)['stowage:last-attach'];
    expect(lastAttach).toBeDefined();
    ec2.resetCalls();
    host.calls.length = 0;
    await driver.unmount('data', ctx());
    const seq = ec2.sequence();
    expect(seq.filter((op) => op === 'CreateSnapshot')).toHaveLength(1);
    expect(seq.indexOf('CreateSnapshot')).toBeLessThan(seq.indexOf('DetachVolume'));
    expect(host.calls.findIndex((c) => c.startsWith('umount'))).toBeLessThan(host.calls.findIndex((c) => c.startsWith('deviceHeldBy')));
    // No waiting: the record is there the moment the Unmount answered.
    const current = tagsOf(ec2.volumes.get(id)!.Tags)['stowage:snapshot-current'];
    expect(current).toBeDefined();
    expect(tagsOf(ec2.snapshots.get(current!)!.Tags)).toMatchObject({ 'stowage:snapshot-reason': 'unmount', 'stowage:covers-attach': lastAttach });
    await driver.stop();
  });

  test('a device held elsewhere is neither snapshotted nor detached: its data may still change', async () => {
    const { ec2, host, makeDriver } = world;
    const driver = makeDriver({ snapshotOnUnmount: true });
    const id = ec2.addVolume('data', ZONE);
    await driver.mount('data', ctx());
    host.busyDevices.add(`/dev/nvme-${id}`);
    ec2.resetCalls();
    await driver.unmount('data', ctx());
    expect(ec2.sequence()).not.toContain('CreateSnapshot');
    expect(ec2.sequence()).not.toContain('DetachVolume');
    await driver.stop();
  });

  test('a CreateSnapshot refused before the detach: the volume is detached anyway and the snapshot taken after it', async () => {
    const { ec2, logLines, makeDriver } = world;
    const driver = makeDriver({ snapshotOnUnmount: true });
    const id = ec2.addVolume('data', ZONE);
    await driver.mount('data', ctx());
    ec2.failNext(CreateSnapshotCommand, ec2Error('SnapshotCreationPerVolumeRateExceeded', 400, 'too many snapshots of this volume'));
    ec2.resetCalls();
    await driver.unmount('data', ctx());
    const seq = ec2.sequence();
    const snapshotCalls = seq.flatMap((op, i) => (op === 'CreateSnapshot' ? [i] : []));
    expect(snapshotCalls.length).toBeGreaterThanOrEqual(2);
    expect(snapshotCalls[0]).toBeLessThan(seq.indexOf('DetachVolume'));
    expect(snapshotCalls.at(-1)).toBeGreaterThan(seq.indexOf('DetachVolume'));
    expect(ec2.volumes.get(id)!.Attachments ?? []).toHaveLength(0);
    expect(tagsOf(ec2.volumes.get(id)!.Tags)['stowage:snapshot-current']).toBeDefined();
    expect(logLines.some((l) => l.volume === 'data' && /could not start before the detach/.test(String(l.msg)))).toBe(true);
    await driver.stop();
  });

  test('a detach finished in the background takes one snapshot, however many attempts it needs', async () => {
    const { ec2, makeDriver } = world;
    const driver = makeDriver({ snapshotOnUnmount: true });
    const id = ec2.addVolume('data', ZONE);
    await driver.mount('data', ctx());
    ec2.failNext(DetachVolumeCommand, ec2Error('UnauthorizedOperation', 403, 'not yet'));
    ec2.resetCalls();
    await driver.unmount('data', ctx());
    const until = Date.now() + 10_000;
    while (!tagsOf(ec2.volumes.get(id)!.Tags)['stowage:snapshot-current'] && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const seq = ec2.sequence();
    expect(seq.filter((op) => op === 'DetachVolume').length).toBeGreaterThanOrEqual(2);
    expect(seq.filter((op) => op === 'CreateSnapshot')).toHaveLength(1);
    expect(tagsOf(ec2.volumes.get(id)!.Tags)['stowage:snapshot-current']).toBeDefined();
    await driver.stop();
  });
});
