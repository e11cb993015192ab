import { readlink, realpath } from 'node:fs/promises';
import path from 'node:path';
import {
  AttachVolumeCommand,
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DescribeInstancesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
} from '@aws-sdk/client-ec2';
import { CreateFileSystemCommand, DescribeFileSystemsCommand } from '@aws-sdk/client-efs';
import { cleanLocalcloud } from '../../../localcloud/index.js';
import { loopsUnder, runInstance, sh, startTestCloud, type TestCloud } from './helpers.js';

let t: TestCloud;
beforeAll(async () => {
  t = await startTestCloud();
});
afterAll(async () => {
  await t?.close();
  expect(t ? loopsUnder(t.dir) : []).toEqual([]);
});

const link = (instanceId: string, volumeId: string) => path.join(t.lc.deviceDir(instanceId), `nvme-Amazon_Elastic_Block_Store_${volumeId.replace('-', '')}`);

test('state survives a restart; attachments keep or regain their loop device; stray loop devices are released', async () => {
  const i1 = await runInstance(t, 'us-east-1a');
  const vol = (await t.ec2.send(new CreateVolumeCommand({ AvailabilityZone: 'us-east-1a', Size: 1 }))).VolumeId!;
  const loose = (await t.ec2.send(new CreateVolumeCommand({ AvailabilityZone: 'us-east-1a', Size: 1 }))).VolumeId!;
  await t.ec2.send(new DescribeVolumesCommand({}));
  await t.ec2.send(new AttachVolumeCommand({ VolumeId: vol, InstanceId: i1, Device: '/dev/sdf' }));
  await t.ec2.send(new DescribeVolumesCommand({}));
  const snap = (await t.ec2.send(new CreateSnapshotCommand({ VolumeId: loose }))).SnapshotId!;
  const fsId = (await t.efs.send(new CreateFileSystemCommand({ CreationToken: 'keep' }))).FileSystemId!;
  const device = await readlink(link(i1, vol));

  await t.restart();
  expect(await readlink(link(i1, vol))).toBe(device);
  const volumes = (await t.ec2.send(new DescribeVolumesCommand({}))).Volumes!;
  expect(volumes.map((v) => [v.VolumeId, v.State])).toEqual([
    [vol, 'in-use'],
    [loose, 'available'],
  ]);
  expect((await t.ec2.send(new DescribeInstancesCommand({}))).Reservations![0]!.Instances![0]!.InstanceId).toBe(i1);
  expect((await t.ec2.send(new DescribeSnapshotsCommand({}))).Snapshots![0]!.SnapshotId).toBe(snap);
  expect((await t.efs.send(new DescribeFileSystemsCommand({}))).FileSystems![0]!.FileSystemId).toBe(fsId);

  // a crash after --clean, plus a loop device on a volume that is not attached
  await t.lc.stop({ release: false });
  await cleanLocalcloud(t.dir);
  expect(loopsUnder(t.dir)).toEqual([]);
  sh('losetup', ['--find', await realpath(path.join(t.dir, 'volumes', `${loose}.img`))]);
  await t.restart();
  const relinked = await readlink(link(i1, vol));
  expect(loopsUnder(t.dir)).toEqual([expect.stringContaining(`${vol}.img`)]);
  expect(loopsUnder(t.dir)[0]).toContain(relinked);
  await t.ec2.send(new DetachVolumeCommand({ VolumeId: vol }));
  expect((await t.ec2.send(new DescribeVolumesCommand({ VolumeIds: [vol] }))).Volumes![0]!.State).toBe('available');
});
