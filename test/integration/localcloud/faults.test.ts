import {
  AttachVolumeCommand,
  CreateSnapshotCommand,
  CreateTagsCommand,
  CreateVolumeCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
} from '@aws-sdk/client-ec2';
import { DescribeFileSystemsCommand } from '@aws-sdk/client-efs';
import { parseFaults } from '../../../localcloud/index.js';
import { runInstance, startTestCloud, type TestCloud } from './helpers.js';

let t: TestCloud;
let i1: string;

beforeAll(async () => {
  t = await startTestCloud();
  i1 = await runInstance(t, 'us-east-1a');
});
afterEach(() => t.lc.setFaults({}));
afterAll(async () => t?.close());

async function failure(p: Promise<unknown>): Promise<{ name: string; status?: number }> {
  try {
    await p;
  } catch (err) {
    const e = err as { name: string; $metadata?: { httpStatusCode?: number } };
    return { name: e.name, status: e.$metadata?.httpStatusCode };
  }
  throw new Error('expected the call to fail');
}

async function volume(): Promise<string> {
  const id = (await t.ec2.send(new CreateVolumeCommand({ AvailabilityZone: 'us-east-1a', Size: 1 }))).VolumeId!;
  await t.ec2.send(new DescribeVolumesCommand({ VolumeIds: [id] }));
  return id;
}

async function attachmentState(id: string) {
  return (await t.ec2.send(new DescribeVolumesCommand({ VolumeIds: [id] }))).Volumes![0]!.Attachments![0]?.State;
}

test('throttling: RequestLimitExceeded with HTTP 503, for every action or one; EFS ThrottlingException', async () => {
  t.lc.setFaults({ throttleRate: 1 });
  expect(await failure(t.ec2.send(new DescribeVolumesCommand({})))).toEqual({ name: 'RequestLimitExceeded', status: 503 });
  expect(await failure(t.efs.send(new DescribeFileSystemsCommand({})))).toEqual({ name: 'ThrottlingException', status: 429 });
  t.lc.setFaults({ throttleRate: { AttachVolume: 1 } });
  const v = await volume();
  expect((await failure(t.ec2.send(new AttachVolumeCommand({ VolumeId: v, InstanceId: i1, Device: '/dev/sdf' })))).name).toBe('RequestLimitExceeded');
});

test('server errors: 500 InternalError or 503 Unavailable', async () => {
  t.lc.setFaults({ serverErrorRate: 1 });
  const seen = new Set<string>();
  for (let n = 0; n < 20; n++) {
    const f = await failure(t.ec2.send(new DescribeVolumesCommand({})));
    seen.add(`${f.status} ${f.name}`);
  }
  expect([...seen].sort()).toEqual(['500 InternalError', '503 Unavailable']);
});

test('a stuck attachment stays attaching until DetachVolume undoes it; only the next N stick', async () => {
  t.lc.setFaults({ stuckAttach: 1 });
  const v = await volume();
  await t.ec2.send(new AttachVolumeCommand({ VolumeId: v, InstanceId: i1, Device: '/dev/sdf' }));
  await new Promise((r) => setTimeout(r, 400));
  expect(await attachmentState(v)).toBe('attaching');
  await t.ec2.send(new DetachVolumeCommand({ VolumeId: v }));
  expect(await attachmentState(v)).toBeUndefined();
  await t.ec2.send(new AttachVolumeCommand({ VolumeId: v, InstanceId: i1, Device: '/dev/sdg' }));
  expect(await attachmentState(v)).toBe('attached');
  await t.ec2.send(new DetachVolumeCommand({ VolumeId: v }));
  expect(await attachmentState(v)).toBeUndefined();
});

test('a slow snapshot stays pending with rising progress', async () => {
  t.lc.setFaults({ slowSnapshotMs: 1500 });
  const snap = (await t.ec2.send(new CreateSnapshotCommand({ VolumeId: await volume() }))).SnapshotId!;
  const progress = async () => (await t.ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snap] }))).Snapshots![0]!;
  await new Promise((r) => setTimeout(r, 700));
  const mid = await progress();
  expect(mid.State).toBe('pending');
  expect(parseInt(mid.Progress!)).toBeGreaterThan(20);
  expect(parseInt(mid.Progress!)).toBeLessThan(100);
  await new Promise((r) => setTimeout(r, 1000));
  expect(await progress()).toMatchObject({ State: 'completed', Progress: '100%' });
});

test('an unresponsive instance loses its tag writes and keeps its volumes until Force', async () => {
  const v = await volume();
  await t.ec2.send(new AttachVolumeCommand({ VolumeId: v, InstanceId: i1, Device: '/dev/sdh' }));
  expect(await attachmentState(v)).toBe('attached');
  const res = await fetch(`${t.lc.url}/_localcloud/faults`, { method: 'POST', body: JSON.stringify({ unresponsiveInstances: [i1] }) });
  expect(await res.json()).toEqual({ unresponsiveInstances: [i1] });
  await t.ec2.send(new CreateTagsCommand({ Resources: [i1], Tags: [{ Key: 'stowage:heartbeat', Value: 'now' }] }));
  const inst = (await t.ec2.send(new DescribeInstancesCommand({ InstanceIds: [i1] }))).Reservations![0]!.Instances![0]!;
  expect(inst.Tags ?? []).toEqual([]);
  await t.ec2.send(new DetachVolumeCommand({ VolumeId: v }));
  expect(await attachmentState(v)).toBe('detaching');
  await t.ec2.send(new DetachVolumeCommand({ VolumeId: v, Force: true }));
  expect(await attachmentState(v)).toBeUndefined();
});

test('the admin state endpoint shows the whole account', async () => {
  const state = (await (await fetch(`${t.lc.url}/_localcloud/state`)).json()) as { instances: { id: string }[]; volumes: unknown[] };
  expect(state.instances.map((i) => i.id)).toEqual([i1]);
  expect(state.volumes.length).toBeGreaterThan(0);
});

test('the CLI fault syntax', () => {
  expect(parseFaults('throttle=0.3,5xx=0.1,stuck-attach=1,slow-snapshot=60000,unresponsive=i-0a,unresponsive=i-0b')).toEqual({
    throttleRate: 0.3,
    serverErrorRate: 0.1,
    stuckAttach: 1,
    slowSnapshotMs: 60000,
    unresponsiveInstances: ['i-0a', 'i-0b'],
  });
  expect(parseFaults('throttle.AttachVolume=1,throttle.DetachVolume=0.5,stuck-attach')).toEqual({
    throttleRate: { AttachVolume: 1, DetachVolume: 0.5 },
    stuckAttach: true,
  });
  expect(() => parseFaults('throttle=2')).toThrow(/probability/);
  expect(() => parseFaults('boom=1')).toThrow(/unknown fault boom/);
});
