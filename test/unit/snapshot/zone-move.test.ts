import type { CallCounter } from '../../../aws/call-counter.js';
import { copyToken } from '../../../core/schema/client-token.js';
import { loadConfig } from '../../../plugin/config.js';
import { ConfigError, PendingError, VolumeBusyError } from '../../../core/errors.js';
import type { Logger } from '../../../core/log.js';
import { SnapshotStore } from '../../../snapshot/snapshot-store.js';
import { describeMove } from '../../../snapshot/zone-move.js';
import { DeleteVolumeCommand } from '@aws-sdk/client-ec2';
import { ec2Error } from '../aws/ec2-error.js';
import { driverWorld, OTHER, type DriverWorld } from '../ebs/driver-world.js';
import type { FakeEc2 } from '../ebs/fake-ec2.js';
import type { FakeHost } from '../ebs/fake-host.js';

const HERE = 'us-east-1a';
const THERE = 'us-east-1c';

let ec2: FakeEc2;
let host: FakeHost;
let counter: CallCounter;
let log: Logger;
let logLines: Record<string, unknown>[];
let makeDriver: DriverWorld['makeDriver'];

const ctx = (name: string, ms = 3000) => ({ deadline: Date.now() + ms, log: log.child({ volume: name }) });
const tagsOf = (id: string) => Object.fromEntries((ec2.volumes.get(id)?.Tags ?? []).map((t) => [t.Key, t.Value]));
const named = (name: string) => [...ec2.volumes.values()].filter((v) => v.Tags?.some((t) => t.Key === 'stowage:volume' && t.Value === name));

beforeEach(() => {
  ({ ec2, host, counter, log, logLines, makeDriver } = driverWorld(HERE));
  ec2.addInstance(OTHER, THERE);
});
afterEach(() => ec2.mock.restore());

describe('cross-zone Mount', () => {
  test('cold: snapshot, record it on the source, copy here with generation 2 and a deterministic token, retire the source, attach', async () => {
    const source = ec2.addVolume('db1', THERE);
    await expect(makeDriver().mount('db1', ctx('db1'))).resolves.toBe('/mnt/stowage/db1');
    const seq = ec2.sequence();
    expect(seq.filter((op) => op === 'CreateSnapshot')).toHaveLength(1);
    expect(seq.indexOf('CreateSnapshot')).toBeLessThan(seq.indexOf('CreateVolume'));
    expect(seq.indexOf('CreateVolume')).toBeLessThan(seq.indexOf('DeleteVolume'));
    expect(seq.indexOf('DeleteVolume')).toBeLessThan(seq.indexOf('AttachVolume'));
    const snapshotId = [...ec2.snapshots.keys()][0]!;
    expect(ec2.input('CreateVolume')).toMatchObject({
      AvailabilityZone: HERE, SnapshotId: snapshotId, Size: 10, VolumeType: 'gp3', Iops: 3000, Throughput: 125, Encrypted: true,
      ClientToken: copyToken('test', 'db1', 2, source, snapshotId),
    });
    expect(ec2.input('DeleteVolume')).toEqual({ VolumeId: source });
    const [copy] = named('db1');
    expect(named('db1')).toHaveLength(1);
    expect(copy!.AvailabilityZone).toBe(HERE);
    expect(tagsOf(copy!.VolumeId!)).toMatchObject({ 'stowage:generation': '2', 'stowage:moved-from': source, 'stowage:fs': 'ext4' });
    // attached now, so no snapshot holds its data any more
    expect(tagsOf(copy!.VolumeId!)['stowage:snapshot-current']).toBeUndefined();
    const snapTags = Object.fromEntries(ec2.snapshots.get(snapshotId)!.Tags!.map((t) => [t.Key, t.Value]));
    expect(snapTags).toMatchObject({ 'stowage:volume': 'db1', 'stowage:generation': '1', 'stowage:source-volume': source, 'stowage:snapshot-reason': 'move' });
    const stages = logLines.filter((l) => l.msg === 'move stage done').map((l) => l.stage);
    expect(stages).toEqual(['snapshot', 'creating', 'verifying', 'retiring']);
    expect(logLines.filter((l) => l.msg === 'move stage done').every((l) => l.volume === 'db1' && typeof l.ms === 'number')).toBe(true);
  });

  test('never attached (blank): re-created here without a snapshot', async () => {
    const source = ec2.addVolume('fresh', THERE, {}, [{ Key: 'stowage:blank', Value: 'true' }]);
    await makeDriver().mount('fresh', ctx('fresh'));
    expect(ec2.sequence()).not.toContain('CreateSnapshot');
    expect(ec2.input('CreateVolume').SnapshotId).toBeUndefined();
    expect(ec2.volumes.has(source)).toBe(false);
    expect(named('fresh')).toHaveLength(1);
    expect(host.calls.some((c) => c.startsWith('mkfs'))).toBe(true);
  });

  test('warm (snapshot on unmount recorded): no CreateSnapshot, restores from that snapshot', async () => {
    const source = ec2.addVolume('db1', THERE);
    const warm = await new SnapshotStore({ ec2: ec2.client, counter, cluster: 'test', pollInitialMs: 5 })
      .create({ id: source, name: 'db1', generation: 1 } as never, 'unmount', ctx('db1'));
    ec2.volumes.get(source)!.Tags!.push({ Key: 'stowage:snapshot-current', Value: warm.id });
    ec2.resetCalls();
    await makeDriver().mount('db1', ctx('db1'));
    expect(ec2.sequence()).not.toContain('CreateSnapshot');
    expect(ec2.input('CreateVolume').SnapshotId).toBe(warm.id);
  });

  test('slower than the deadline: a retryable answer naming stage and progress; Get shows it; the next Mount joins and succeeds', async () => {
    ec2.addVolume('db1', THERE);
    const driver = makeDriver();
    const slow = setInterval(() => { for (const id of ec2.snapshots.keys()) ec2.slowSnapshots.add(id); }, 1);
    const err = (await driver.mount('db1', ctx('db1', 300)).catch((e: unknown) => e)) as PendingError;
    clearInterval(slow);
    expect(err).toBeInstanceOf(PendingError);
    expect(err.message).toMatch(/^volume db1 is moving us-east-1c → us-east-1a: snapshot 57%; the move goes on/);
    expect(err.retryable).toBe(true);
    expect((await driver.get('db1', ctx('db1')))!.status).toMatchObject({ moving: 'us-east-1c → us-east-1a', moveStage: 'snapshot 57%' });
    ec2.slowSnapshots.clear();
    await expect(driver.mount('db1', ctx('db1'))).resolves.toBe('/mnt/stowage/db1');
    expect(ec2.sequence().filter((op) => op === 'CreateSnapshot')).toHaveLength(1);
    expect(named('db1')).toHaveLength(1);
  });

  test('the source attached (and written) while the copy was made: the copy is removed, the source stays the volume', async () => {
    const source = ec2.addVolume('db1', THERE);
    const driver = makeDriver({
      afterMoveStep: (step) => {
        if (step !== 'copy-available') return;
        // another node in the source zone mounts it: its attach removes snapshot-current first
        ec2.volumes.get(source)!.Tags = ec2.volumes.get(source)!.Tags!.filter((t) => t.Key !== 'stowage:snapshot-current');
        ec2.attachNow(source, OTHER, '/dev/xvdba');
      },
    });
    const err = await driver.mount('db1', ctx('db1', 500)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VolumeBusyError);
    expect(named('db1').map((v) => v.VolumeId)).toEqual([source]);
    expect(logLines.some((l) => l.msg === 'removing the copy of an abandoned or lost move')).toBe(true);
  });

  test('issue 15.3: the source mounted, written and unmounted while DeleteVolume is throttled: the retry re-checks, the stale copy goes, a fresh snapshot moves the new data', async () => {
    const source = ec2.addVolume('db1', THERE);
    let deletes = 0;
    ec2.mock.on(DeleteVolumeCommand).callsFake((input: { VolumeId: string }) => {
      if (deletes++ === 0) {
        // Between two attempts a node in the source zone attaches (clearing snapshot-current), writes and detaches.
        const volume = ec2.volumes.get(source)!;
        volume.Tags = volume.Tags!.filter((t) => t.Key !== 'stowage:snapshot-current');
        throw ec2Error('RequestLimitExceeded', 503);
      }
      ec2.volumes.delete(input.VolumeId);
      return {};
    });
    await makeDriver().mount('db1', ctx('db1'));
    expect(logLines.find((l) => l.msg === 'removing the copy of an abandoned or lost move')?.why).toMatch(/attached after the copy was made/);
    // The volume is a copy of a snapshot taken after the write, never of the first (stale) one.
    const snapshotsTaken = ec2.sequence().filter((op) => op === 'CreateSnapshot');
    expect(snapshotsTaken).toHaveLength(2);
    const [volume] = named('db1');
    expect(volume!.SnapshotId).toBe([...ec2.snapshots.keys()].at(-1));
  });

  test('an unfinished copy in a third zone (crashed mover): finished first, then moved here from its snapshot without a new one', async () => {
    const source = ec2.addVolume('db1', THERE);
    const store = new SnapshotStore({ ec2: ec2.client, counter, cluster: 'test', pollInitialMs: 5 });
    const snap = await store.create({ id: source, name: 'db1', generation: 1 } as never, 'move', ctx('db1'));
    ec2.volumes.get(source)!.Tags!.push({ Key: 'stowage:snapshot-current', Value: snap.id });
    ec2.addVolume('db1', 'us-east-1b', { CreateTime: new Date('2024-05-02T10:00:00Z') }, [
      { Key: 'stowage:moved-from', Value: source }, { Key: 'stowage:snapshot-current', Value: snap.id },
    ]);
    ec2.volumes.forEach((v) => v.AvailabilityZone === 'us-east-1b' && (v.Tags = v.Tags!.map((t) => (t.Key === 'stowage:generation' ? { ...t, Value: '2' } : t))));
    ec2.resetCalls();
    await makeDriver().mount('db1', ctx('db1'));
    expect(ec2.sequence()).not.toContain('CreateSnapshot');
    const [only] = named('db1');
    expect(named('db1')).toHaveLength(1);
    expect(only!.AvailabilityZone).toBe(HERE);
    expect(tagsOf(only!.VolumeId!)['stowage:generation']).toBe('3');
  });

  test('describeMove wording', () => {
    expect(describeMove({ name: 'db1', from: 'us-east-1a', to: 'us-east-1b', stage: 'snapshot', percent: 57 })).toBe('volume db1 is moving us-east-1a → us-east-1b: snapshot 57%');
    expect(describeMove({ name: 'db1', from: 'us-east-1a', to: 'us-east-1b', stage: 'retiring' })).toBe('volume db1 is moving us-east-1a → us-east-1b: retiring');
  });
});

describe('snapshot on unmount and retention', () => {
  test('after a clean detach: a snapshot tagged with the generation, recorded as current; the next attach clears the record first', async () => {
    const id = ec2.addVolume('db1', HERE, {}, [{ Key: 'stowage:generation', Value: '4' }]);
    ec2.volumes.get(id)!.Tags = ec2.volumes.get(id)!.Tags!.filter((t) => !(t.Key === 'stowage:generation' && t.Value === '1'));
    const driver = makeDriver({ snapshotOnUnmount: true });
    await driver.mount('db1', ctx('db1'));
    await driver.unmount('db1', ctx('db1'));
    const until = Date.now() + 2000;
    while (!tagsOf(id)['stowage:snapshot-current'] && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
    const snapshotId = tagsOf(id)['stowage:snapshot-current']!;
    expect(ec2.snapshots.get(snapshotId)!.Tags).toEqual(expect.arrayContaining([
      { Key: 'stowage:generation', Value: '4' }, { Key: 'stowage:snapshot-reason', Value: 'unmount' },
    ]));
    ec2.resetCalls();
    await driver.mount('db1', ctx('db1'));
    const seq = ec2.sequence();
    expect(seq.indexOf('DeleteTags')).toBeGreaterThanOrEqual(0);
    expect(seq.indexOf('DeleteTags')).toBeLessThan(seq.indexOf('AttachVolume'));
    expect(tagsOf(id)['stowage:snapshot-current']).toBeUndefined();
  });

  test('prune keeps the newest N of its own snapshots; pending, protected and operator snapshots stay', async () => {
    const id = ec2.addVolume('db1', HERE);
    const store = new SnapshotStore({ ec2: ec2.client, counter, cluster: 'test', pollInitialMs: 5 });
    const take = (reason: string) => store.create({ id, name: 'db1', generation: 1 } as never, reason as 'move', ctx('db1'));
    const [oldest, operator, protectedOne, older, newest] = [await take('unmount'), await take('operator'), await take('move'), await take('unmount'), await take('move')];
    await store.ofName('db1', ctx('db1'));
    await store.ofName('db1', ctx('db1')); // all completed now
    const pending = await take('unmount');
    const deleted = await store.prune('db1', 1, new Set([protectedOne!.id]), ctx('db1'));
    expect(deleted).toBe(2);
    expect([...ec2.snapshots.keys()].sort()).toEqual([operator!.id, protectedOne!.id, newest!.id, pending.id].sort());
    expect(ec2.snapshots.has(oldest!.id) || ec2.snapshots.has(older!.id)).toBe(false);
  });

  test('Remove deletes the snapshots it took to move the volume, not operator backups', async () => {
    const id = ec2.addVolume('db1', HERE);
    const store = new SnapshotStore({ ec2: ec2.client, counter, cluster: 'test', pollInitialMs: 5 });
    await store.create({ id, name: 'db1', generation: 1 } as never, 'unmount', ctx('db1'));
    const backup = await store.create({ id, name: 'db1', generation: 1 } as never, 'operator' as 'move', ctx('db1'));
    await makeDriver().remove('db1', ctx('db1'));
    expect([...ec2.snapshots.keys()]).toEqual([backup.id]);
  });

  test('STOWAGE_SNAPSHOT_RETAIN: default 1, a whole number, else the start stops naming it', () => {
    expect(loadConfig({}).snapshotRetain).toBe(1);
    expect(loadConfig({ STOWAGE_SNAPSHOT_RETAIN: '0' }).snapshotRetain).toBe(0);
    expect(() => loadConfig({ STOWAGE_SNAPSHOT_RETAIN: 'two' })).toThrow(ConfigError);
    expect(() => loadConfig({ STOWAGE_SNAPSHOT_RETAIN: '-1' })).toThrow('STOWAGE_SNAPSHOT_RETAIN');
  });
});
