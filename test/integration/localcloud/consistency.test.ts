import {
  AttachVolumeCommand,
  CreateSnapshotCommand,
  CreateTagsCommand,
  CreateVolumeCommand,
  DeleteVolumeCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
} from '@aws-sdk/client-ec2';
import { parseConsistency } from '../../../localcloud/index.js';
import { errorCode, runInstance, startTestCloud, type TestCloud } from './helpers.js';

const LAG_MS = 1000;
const zone = 'us-east-1a';

let t: TestCloud;
let i1: string;

beforeAll(async () => {
  t = await startTestCloud({ consistency: { mode: 'eventual', maxLagMs: LAG_MS, seed: 7 } });
  i1 = await runInstance(t, zone);
  await settle();
});
afterAll(async () => t?.close());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface AccountNow {
  volumes: { state: string; attachment?: { state: string } }[];
  snapshots: { state: string }[];
}

/** Once no transition is pending in the account as it is now, and the longest lag has passed: every read sees it. */
async function settle(): Promise<void> {
  for (;;) {
    const now = (await (await fetch(`${t.lc.url}/_localcloud/state`)).json()) as AccountNow;
    const quiet =
      now.volumes.every((v) => v.state === 'available' && (v.attachment?.state ?? 'attached') === 'attached') &&
      now.snapshots.every((s) => s.state === 'completed');
    if (quiet) break;
    await sleep(50);
  }
  await sleep(LAG_MS + 100);
}

/**
 * What n reads in a row saw. Each draws its own lag up to LAG_MS, so a few ms after a change the
 * chance that eight all see it is below 1e-9; once settled, all must.
 */
async function reads<T>(n: number, read: () => Promise<T>): Promise<T[]> {
  const seen: T[] = [];
  for (let i = 0; i < n; i++) seen.push(await read());
  return seen;
}

/** The volume's status as a Describe by id answers it, or the error code. */
async function volumeSeen(id: string): Promise<string> {
  try {
    const v = (await t.ec2.send(new DescribeVolumesCommand({ VolumeIds: [id] }))).Volumes![0]!;
    return `${v.State}${v.Attachments!.map((a) => ` ${a.State} ${a.InstanceId}`).join('')}`;
  } catch (err) {
    return (err as { name: string }).name;
  }
}

async function availableVolume(): Promise<string> {
  const id = (await t.ec2.send(new CreateVolumeCommand({ AvailabilityZone: zone, Size: 1 }))).VolumeId!;
  await settle();
  return id;
}

test('a volume just made is missing from Describe, yet mutating calls act on it at once', async () => {
  const id = (await t.ec2.send(new CreateVolumeCommand({ AvailabilityZone: zone, Size: 1 }))).VolumeId!;
  expect(await reads(8, () => volumeSeen(id))).toContain('InvalidVolume.NotFound');

  await t.ec2.send(new CreateTagsCommand({ Resources: [id], Tags: [{ Key: 'k', Value: 'v' }] }));
  await settle();
  const v = (await t.ec2.send(new DescribeVolumesCommand({ VolumeIds: [id] }))).Volumes![0]!;
  expect(v).toMatchObject({ State: 'available', Tags: [{ Key: 'k', Value: 'v' }] });
});

test('reads can miss a just-made attach, in DescribeVolumes and DescribeInstances, and see it after the lag', async () => {
  const id = await availableVolume();
  await t.ec2.send(new AttachVolumeCommand({ VolumeId: id, InstanceId: i1, Device: '/dev/sdf' }));
  expect(await reads(8, () => volumeSeen(id))).toContain('available');
  const mappings = () =>
    t.ec2
      .send(new DescribeInstancesCommand({ InstanceIds: [i1] }))
      .then((r) => (r.Reservations![0]!.Instances![0]!.BlockDeviceMappings ?? []).some((m) => m.Ebs!.VolumeId === id));
  expect(await reads(8, mappings)).toContain(false);

  // the detach acts on the attachment even where reads do not show it yet
  await t.ec2.send(new DetachVolumeCommand({ VolumeId: id }));
  await settle();
  expect(await reads(8, () => volumeSeen(id))).toEqual(Array(8).fill('available'));

  await t.ec2.send(new AttachVolumeCommand({ VolumeId: id, InstanceId: i1, Device: '/dev/sdg' }));
  await settle();
  expect(await reads(8, () => volumeSeen(id))).toEqual(Array(8).fill(`in-use attached ${i1}`));
  expect(await reads(8, mappings)).toEqual(Array(8).fill(true));
  await t.ec2.send(new DetachVolumeCommand({ VolumeId: id }));
});

test('reads can miss a tag change and see it after the lag; two reads in a row may go back in time', async () => {
  const id = await availableVolume();
  const tag = () =>
    t.ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'tag:stowage:volume', Values: ['db'] }] })).then((r) => r.Volumes!.some((v) => v.VolumeId === id));
  await t.ec2.send(new CreateTagsCommand({ Resources: [id], Tags: [{ Key: 'stowage:volume', Value: 'db' }] }));
  await sleep(LAG_MS / 2);
  // half the lag later, about half the reads see the tag, in no order: one that saw it, then one that did not
  const seen = await reads(16, tag);
  expect(seen.indexOf(true)).toBeGreaterThanOrEqual(0);
  expect(seen.lastIndexOf(false)).toBeGreaterThan(seen.indexOf(true));
  await settle();
  expect(await reads(8, tag)).toEqual(Array(8).fill(true));
});

test('a deleted volume still shows until the lag has passed; a new snapshot is missing until then', async () => {
  const id = await availableVolume();
  const snap = (await t.ec2.send(new CreateSnapshotCommand({ VolumeId: id }))).SnapshotId!;
  const snapSeen = () =>
    t.ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snap] })).then(
      (r) => r.Snapshots![0]!.State!,
      (err: { name: string }) => err.name,
    );
  expect(await reads(8, snapSeen)).toContain('InvalidSnapshot.NotFound');

  await t.ec2.send(new DeleteVolumeCommand({ VolumeId: id }));
  // the next call erases it: it is gone for every mutating call
  expect(await errorCode(t.ec2.send(new DeleteVolumeCommand({ VolumeId: id })))).toBe('InvalidVolume.NotFound');
  expect(await reads(8, () => volumeSeen(id))).toContain('available');
  await settle();
  expect(await reads(8, () => volumeSeen(id))).toEqual(Array(8).fill('InvalidVolume.NotFound'));
  expect(await reads(8, snapSeen)).toEqual(Array(8).fill('completed'));
});

test('the setting is read and replaced through the admin API and setConsistency', async () => {
  const admin = `${t.lc.url}/_localcloud/consistency`;
  expect(await (await fetch(admin)).json()).toEqual({ mode: 'eventual', maxLagMs: LAG_MS, seed: 7 });

  t.lc.setConsistency({ mode: 'strict' });
  const id = (await t.ec2.send(new CreateVolumeCommand({ AvailabilityZone: zone, Size: 1 }))).VolumeId!;
  expect(await reads(8, () => volumeSeen(id))).toEqual(Array(8).fill('available'));

  const set = await fetch(admin, { method: 'POST', body: JSON.stringify({ mode: 'eventual' }) });
  expect(await set.json()).toEqual({ mode: 'eventual', maxLagMs: 2000 });
  const bad = await fetch(admin, { method: 'POST', body: JSON.stringify({ mode: 'eventual', maxLagMs: -1 }) });
  expect(bad.status).toBe(400);
  expect(await (await fetch(admin)).json()).toEqual({ mode: 'eventual', maxLagMs: 2000 });
  expect(() => t.lc.setConsistency({ mode: 'strict', seed: 1 })).toThrow(/strict takes no/);
  t.lc.setConsistency({ mode: 'eventual', maxLagMs: LAG_MS, seed: 7 });
});

test('the CLI consistency syntax', () => {
  expect(parseConsistency('strict')).toEqual({ mode: 'strict' });
  expect(parseConsistency('eventual')).toEqual({ mode: 'eventual', maxLagMs: 2000 });
  expect(parseConsistency('eventual=500')).toEqual({ mode: 'eventual', maxLagMs: 500 });
  expect(parseConsistency('eventual=500,seed=42')).toEqual({ mode: 'eventual', maxLagMs: 500, seed: 42 });
  for (const bad of ['', 'strict=5', 'eventual=-1', 'eventual=1.5', 'eventual,seed=x', 'sometimes'])
    expect(() => parseConsistency(bad)).toThrow(/expected strict or eventual/);
});
