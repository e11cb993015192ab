import { CreateSnapshotCommand } from '@aws-sdk/client-ec2';
import { SnapshotStore } from '../../../snapshot/snapshot-store.js';
import { ec2Error } from '../aws/ec2-error.js';
import { driverWorld, OTHER, type DriverWorld } from './driver-world.js';

const HERE = 'us-east-1a';
const THERE = 'us-east-1c';

/** A heartbeat that never changes: the holder is judged stale once it stayed so for fenceAfterMs. */
const hung = [{ Key: 'stowage:heartbeat', Value: String(Date.now()) }];

// Issue 17.4, node loss: a cross-zone Mount that waits out a holder which does not let go snapshots
// the volume meanwhile, so the move's own snapshot, taken once the holder is gone, is incremental
// from it. That head start is never taken for the volume's data.
describe('head-start snapshot while a holder in another zone keeps the volume', () => {
  let world: DriverWorld;
  beforeEach(() => {
    world = driverWorld(HERE);
  });
  afterEach(() => world.ec2.mock.restore());

  const ctx = (ms = 5000) => ({ deadline: Date.now() + ms, log: world.log.child({ volume: 'db1' }) });
  const tagsOf = (tags: { Key?: string; Value?: string }[] | undefined) => Object.fromEntries((tags ?? []).map((t) => [t.Key, t.Value]));

  test('taken during the wait, before the force-detach; the copy is made from the move\'s own snapshot, taken after it', async () => {
    const { ec2, makeDriver } = world;
    ec2.addInstance(OTHER, THERE, 'running', hung);
    const source = ec2.addVolume('db1', THERE, {}, [{ Key: 'stowage:formatted', Value: 'true' }, { Key: 'stowage:last-attach', Value: 'their-attach' }]);
    ec2.attachNow(source, OTHER, '/dev/xvdba');
    const driver = makeDriver({ fenceAfterMs: 300 });
    await driver.mount('db1', ctx());
    const seq = ec2.sequence();
    const snapshotCalls = seq.flatMap((op, i) => (op === 'CreateSnapshot' ? [i] : []));
    const forced = seq.indexOf('DetachVolume');
    expect(ec2.input('DetachVolume')).toMatchObject({ VolumeId: source, InstanceId: OTHER, Force: true });
    expect(snapshotCalls).toHaveLength(2);
    expect(snapshotCalls[0]).toBeLessThan(forced);
    expect(snapshotCalls[1]).toBeGreaterThan(forced);
    const [headStart, moved] = [0, 1].map((n) => ec2.input('CreateSnapshot', n));
    const headStartId = [...ec2.snapshots.values()].find((s) => tagsOf(s.Tags)['stowage:covers-attach'] === undefined)?.SnapshotId;
    expect(tagsOf((headStart!.TagSpecifications as { Tags: { Key: string; Value: string }[] }[])[0]!.Tags)).toMatchObject({ 'stowage:snapshot-reason': 'move' });
    expect(tagsOf((headStart!.TagSpecifications as { Tags: { Key: string; Value: string }[] }[])[0]!.Tags)['stowage:covers-attach']).toBeUndefined();
    expect(tagsOf((moved!.TagSpecifications as { Tags: { Key: string; Value: string }[] }[])[0]!.Tags)['stowage:covers-attach']).toBe('their-attach');
    expect(ec2.input('CreateVolume').SnapshotId).not.toBe(headStartId);
    await driver.stop();
  });

  test('none for a holder in this zone (no move follows), nor for one that lets go at the first look', async () => {
    const { ec2, makeDriver } = world;
    ec2.addInstance('i-000000000000000cc', HERE, 'running', hung);
    const here = ec2.addVolume('db1', HERE);
    ec2.attachNow(here, 'i-000000000000000cc', '/dev/xvdba');
    const driver = makeDriver({ fenceAfterMs: 300 });
    await driver.mount('db1', ctx());
    expect(ec2.sequence()).not.toContain('CreateSnapshot');

    ec2.addInstance(OTHER, THERE, 'running', hung);
    const there = ec2.addVolume('db2', THERE, {}, [{ Key: 'stowage:formatted', Value: 'true' }]);
    ec2.attachNow(there, OTHER, '/dev/xvdbb');
    setTimeout(() => (ec2.volumes.get(there)!.Attachments![0]!.State = 'detaching'), 50);
    ec2.resetCalls();
    await driver.mount('db2', { ...ctx(), log: world.log.child({ volume: 'db2' }) });
    expect(ec2.sequence().filter((op) => op === 'CreateSnapshot')).toHaveLength(1); // the move's own
    expect(ec2.sequence()).not.toContain('DetachVolume');
    await driver.stop();
  });

  test('one per holding: a snapshot already pending for the volume is the head start', async () => {
    const { ec2, counter, makeDriver } = world;
    ec2.addInstance(OTHER, THERE, 'running', hung);
    const source = ec2.addVolume('db1', THERE, {}, [{ Key: 'stowage:formatted', Value: 'true' }]);
    ec2.attachNow(source, OTHER, '/dev/xvdba');
    const earlier = await new SnapshotStore({ ec2: ec2.client, counter, cluster: 'test', pollInitialMs: 5 })
      .create({ id: source, name: 'db1', generation: 1, lastAttach: undefined } as never, 'move', ctx());
    ec2.slowSnapshots.add(earlier.id); // still pending when the Mount looks
    setTimeout(() => ec2.slowSnapshots.delete(earlier.id), 600);
    ec2.resetCalls();
    const driver = makeDriver({ fenceAfterMs: 300 });
    await driver.mount('db1', ctx());
    expect(ec2.sequence().filter((op) => op === 'CreateSnapshot')).toHaveLength(1); // the move's own, after the force-detach
    expect(ec2.sequence().lastIndexOf('CreateSnapshot')).toBeGreaterThan(ec2.sequence().indexOf('DetachVolume'));
    expect(world.logLines.some((l) => /already gives the move its head start/.test(String(l.msg)))).toBe(true);
    await driver.stop();
  });

  test('a head start EC2 refuses costs only the head start: the Mount goes on and the move snapshots by itself', async () => {
    const { ec2, makeDriver, logLines } = world;
    ec2.addInstance(OTHER, THERE, 'running', hung);
    const source = ec2.addVolume('db1', THERE, {}, [{ Key: 'stowage:formatted', Value: 'true' }]);
    ec2.attachNow(source, OTHER, '/dev/xvdba');
    ec2.failNext(CreateSnapshotCommand, ec2Error('SnapshotCreationPerVolumeRateExceeded', 400, 'too many snapshots of this volume'));
    const driver = makeDriver({ fenceAfterMs: 300 });
    await expect(driver.mount('db1', ctx())).resolves.toBe('/mnt/stowage/db1');
    const seq = ec2.sequence();
    expect(seq.filter((op) => op === 'CreateSnapshot')).toHaveLength(2); // the refused head start, the move's own
    expect(seq.lastIndexOf('CreateSnapshot')).toBeGreaterThan(seq.indexOf('DetachVolume'));
    expect(logLines.some((l) => l.volume === 'db1' && l.level === 40 && /head-start snapshot not taken/.test(String(l.msg)))).toBe(true);
    await driver.stop();
  });
});
