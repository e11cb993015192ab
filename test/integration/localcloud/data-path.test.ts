import { mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  AttachVolumeCommand,
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  type VolumeAttachmentState,
} from '@aws-sdk/client-ec2';
import { loopsUnder, runInstance, sh, startTestCloud, type TestCloud } from './helpers.js';

let t: TestCloud;
let mnt: string;
const mounted: string[] = [];

beforeAll(async () => {
  t = await startTestCloud();
  mnt = await mkdtemp(path.join(os.tmpdir(), 'stowage-localcloud-mnt-'));
});

afterAll(async () => {
  for (const m of mounted.splice(0)) sh('umount', [m]);
  await t?.close();
  await rm(mnt, { recursive: true, force: true });
  expect(t ? loopsUnder(t.dir) : []).toEqual([]);
});

async function attachmentState(volumeId: string): Promise<VolumeAttachmentState | undefined> {
  const v = (await t.ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }))).Volumes![0]!;
  return v.Attachments![0]?.State;
}

async function attach(volumeId: string, instanceId: string): Promise<string> {
  await t.ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] })); // creating → available
  await t.ec2.send(new AttachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId, Device: '/dev/sdf' }));
  expect(await attachmentState(volumeId)).toBe('attached');
  // what the plugin does: find the device by volume id in its instance's device folder
  return realpath(path.join(t.lc.deviceDir(instanceId), `nvme-Amazon_Elastic_Block_Store_${volumeId.replace('-', '')}`));
}

async function mount(device: string, at: string): Promise<void> {
  sh('mount', [device, at]);
  mounted.push(at);
}

function umount(at: string): void {
  sh('umount', [at]);
  mounted.splice(mounted.indexOf(at), 1);
}

test('data written on instance 1 is read on instance 2 in another zone, through snapshot and restore', async () => {
  const i1 = await runInstance(t, 'us-east-1a');
  const i2 = await runInstance(t, 'us-east-1b');
  const vol = (await t.ec2.send(new CreateVolumeCommand({ AvailabilityZone: 'us-east-1a', Size: 1, VolumeType: 'gp3' }))).VolumeId!;
  const dev1 = await attach(vol, i1);
  sh('mkfs.ext4', ['-q', dev1]);
  await mount(dev1, mnt);
  await writeFile(path.join(mnt, 'hello.txt'), 'written on i1\n');

  // mounted: the instance does not let go, as a real OS would not
  await t.ec2.send(new DetachVolumeCommand({ VolumeId: vol }));
  expect(await attachmentState(vol)).toBe('detaching');
  expect(await attachmentState(vol)).toBe('detaching');
  umount(mnt);
  expect(await attachmentState(vol)).toBeUndefined();

  const snap = (await t.ec2.send(new CreateSnapshotCommand({ VolumeId: vol }))).SnapshotId!;
  expect((await t.ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snap] }))).Snapshots![0]!.State).toBe('completed');
  const restored = (await t.ec2.send(new CreateVolumeCommand({ AvailabilityZone: 'us-east-1b', SnapshotId: snap }))).VolumeId!;
  const dev2 = await attach(restored, i2);
  await mount(dev2, mnt);
  expect(await readFile(path.join(mnt, 'hello.txt'), 'utf8')).toBe('written on i1\n');
  umount(mnt);
  await t.ec2.send(new DetachVolumeCommand({ VolumeId: restored }));
  expect(await attachmentState(restored)).toBeUndefined();
});

test('Force detaches a mounted volume; the loop device goes away at unmount', async () => {
  const i1 = await runInstance(t, 'us-east-1a');
  const vol = (await t.ec2.send(new CreateVolumeCommand({ AvailabilityZone: 'us-east-1a', Size: 1 }))).VolumeId!;
  const dev = await attach(vol, i1);
  sh('mkfs.ext4', ['-q', dev]);
  await mount(dev, mnt);
  await t.ec2.send(new DetachVolumeCommand({ VolumeId: vol, Force: true }));
  expect(await attachmentState(vol)).toBeUndefined();
  umount(mnt);
  expect(loopsUnder(t.lc.dir)).toEqual([]);
});
