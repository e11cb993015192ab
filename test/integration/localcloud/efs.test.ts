import { readFile, stat } from 'node:fs/promises';
import { DescribeSubnetsCommand } from '@aws-sdk/client-ec2';
import {
  CreateAccessPointCommand,
  CreateFileSystemCommand,
  CreateMountTargetCommand,
  DeleteAccessPointCommand,
  DeleteFileSystemCommand,
  DeleteMountTargetCommand,
  DescribeAccessPointsCommand,
  DescribeFileSystemsCommand,
  DescribeMountTargetsCommand,
  ListTagsForResourceCommand,
  TagResourceCommand,
  UntagResourceCommand,
} from '@aws-sdk/client-efs';
import { errorCode, startTestCloud, type TestCloud } from './helpers.js';

let t: TestCloud;
beforeAll(async () => {
  t = await startTestCloud();
});
afterAll(async () => t?.close());

async function subnet(zone: string): Promise<string> {
  const out = await t.ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'availability-zone', Values: [zone] }] }));
  return out.Subnets![0]!.SubnetId!;
}

test('file systems: create (creating → available), duplicate token, describe, tags, delete', async () => {
  const fs = await t.efs.send(new CreateFileSystemCommand({ CreationToken: 'tok', PerformanceMode: 'maxIO', Tags: [{ Key: 'Name', Value: 'shared' }] }));
  expect(fs).toMatchObject({ LifeCycleState: 'creating', PerformanceMode: 'maxIO', Name: 'shared', NumberOfMountTargets: 0, CreationTime: expect.any(Date) });
  expect(fs.FileSystemId).toMatch(/^fs-[0-9a-f]{17}$/);
  expect((await stat(`${t.lc.dir}/efs/${fs.FileSystemId}`)).isDirectory()).toBe(true);
  const d = await t.efs.send(new DescribeFileSystemsCommand({ CreationToken: 'tok' }));
  expect(d.FileSystems).toEqual([expect.objectContaining({ FileSystemId: fs.FileSystemId, LifeCycleState: 'available' })]);
  expect(await errorCode(t.efs.send(new CreateFileSystemCommand({ CreationToken: 'tok' })))).toBe('FileSystemAlreadyExists');
  expect(await errorCode(t.efs.send(new DescribeFileSystemsCommand({ FileSystemId: 'fs-00000000000000000' })))).toBe('FileSystemNotFound');

  await t.efs.send(new TagResourceCommand({ ResourceId: fs.FileSystemId, Tags: [{ Key: 'stowage:cluster', Value: 'c1' }] }));
  await t.efs.send(new UntagResourceCommand({ ResourceId: fs.FileSystemId, TagKeys: ['Name'] }));
  expect((await t.efs.send(new ListTagsForResourceCommand({ ResourceId: fs.FileSystemId }))).Tags).toEqual([{ Key: 'stowage:cluster', Value: 'c1' }]);

  await t.efs.send(new DeleteFileSystemCommand({ FileSystemId: fs.FileSystemId }));
  expect(await errorCode(t.efs.send(new DeleteFileSystemCommand({ FileSystemId: fs.FileSystemId })))).toBe('FileSystemNotFound');
});

test('mount targets: one per zone, with an IP that resolves to the file system folder', async () => {
  const fsId = (await t.efs.send(new CreateFileSystemCommand({ CreationToken: 'mt' }))).FileSystemId!;
  await t.efs.send(new DescribeFileSystemsCommand({ FileSystemId: fsId }));
  const a = await t.efs.send(new CreateMountTargetCommand({ FileSystemId: fsId, SubnetId: await subnet('us-east-1a') }));
  expect(a).toMatchObject({ LifeCycleState: 'creating', AvailabilityZoneName: 'us-east-1a', FileSystemId: fsId });
  const b = await t.efs.send(new CreateMountTargetCommand({ FileSystemId: fsId, SubnetId: await subnet('us-east-1b'), IpAddress: '172.31.16.77' }));
  expect(b.IpAddress).toBe('172.31.16.77');
  expect(await errorCode(t.efs.send(new CreateMountTargetCommand({ FileSystemId: fsId, SubnetId: await subnet('us-east-1a') })))).toBe('MountTargetConflict');
  expect(await errorCode(t.efs.send(new CreateMountTargetCommand({ FileSystemId: fsId, SubnetId: await subnet('us-east-1c'), IpAddress: '172.31.16.77' })))).toBe(
    'IpAddressInUse',
  );
  expect(await errorCode(t.efs.send(new CreateMountTargetCommand({ FileSystemId: fsId, SubnetId: 'subnet-00000000000000000' })))).toBe('SubnetNotFound');
  expect(await errorCode(t.efs.send(new CreateMountTargetCommand({ FileSystemId: 'fs-00000000000000000', SubnetId: await subnet('us-east-1a') })))).toBe(
    'FileSystemNotFound',
  );

  const list = await t.efs.send(new DescribeMountTargetsCommand({ FileSystemId: fsId }));
  expect(list.MountTargets!.map((m) => [m.AvailabilityZoneName, m.LifeCycleState])).toEqual([
    ['us-east-1a', 'available'],
    ['us-east-1b', 'available'],
  ]);
  const map = JSON.parse(await readFile(`${t.lc.dir}/efs/mount-targets.json`, 'utf8'));
  expect(map[a.IpAddress!]).toEqual({ mountTargetId: a.MountTargetId, fileSystemId: fsId, availabilityZone: 'us-east-1a', path: `${t.lc.dir}/efs/${fsId}` });
  expect(await (await fetch(`${t.lc.url}/_localcloud/mount-targets`)).json()).toEqual(map);

  expect(await errorCode(t.efs.send(new DeleteFileSystemCommand({ FileSystemId: fsId })))).toBe('FileSystemInUse');
  await t.efs.send(new DeleteMountTargetCommand({ MountTargetId: b.MountTargetId }));
  expect(await errorCode(t.efs.send(new DescribeMountTargetsCommand({ MountTargetId: b.MountTargetId })))).toBe('MountTargetNotFound');
});

test('access points: root directory created with its owner and mode, ClientToken, paging, delete', async () => {
  const fsId = (await t.efs.send(new CreateFileSystemCommand({ CreationToken: 'ap' }))).FileSystemId!;
  await t.efs.send(new DescribeFileSystemsCommand({ FileSystemId: fsId }));
  const request = {
    ClientToken: 'vol-a',
    FileSystemId: fsId,
    PosixUser: { Uid: 1000, Gid: 1000 },
    RootDirectory: { Path: '/stowage/a', CreationInfo: { OwnerUid: 1000, OwnerGid: 1001, Permissions: '0750' } },
    Tags: [{ Key: 'stowage:volume', Value: 'a' }],
  };
  const ap = await t.efs.send(new CreateAccessPointCommand(request));
  expect(ap).toMatchObject({ LifeCycleState: 'creating', FileSystemId: fsId, RootDirectory: request.RootDirectory, PosixUser: { Uid: 1000, Gid: 1000 } });
  const root = await stat(`${t.lc.dir}/efs/${fsId}/stowage/a`);
  expect([root.uid, root.gid, root.mode & 0o777]).toEqual([1000, 1001, 0o750]);
  expect((await t.efs.send(new CreateAccessPointCommand(request))).AccessPointId).toBe(ap.AccessPointId);
  expect(await errorCode(t.efs.send(new CreateAccessPointCommand({ ...request, RootDirectory: { Path: '/other' } })))).toBe('AccessPointAlreadyExists');

  for (const n of [1, 2]) await t.efs.send(new CreateAccessPointCommand({ ClientToken: `n${n}`, FileSystemId: fsId, RootDirectory: { Path: `/n${n}` } }));
  const p1 = await t.efs.send(new DescribeAccessPointsCommand({ FileSystemId: fsId, MaxResults: 2 }));
  expect(p1.AccessPoints).toHaveLength(2);
  expect(p1.AccessPoints![0]!.LifeCycleState).toBe('available');
  const p2 = await t.efs.send(new DescribeAccessPointsCommand({ FileSystemId: fsId, MaxResults: 2, NextToken: p1.NextToken }));
  expect(p2.AccessPoints).toHaveLength(1);
  expect(p2.NextToken).toBeUndefined();

  await t.efs.send(new DeleteAccessPointCommand({ AccessPointId: ap.AccessPointId }));
  expect(await errorCode(t.efs.send(new DescribeAccessPointsCommand({ AccessPointId: ap.AccessPointId })))).toBe('AccessPointNotFound');
  expect(await errorCode(t.efs.send(new DeleteAccessPointCommand({ AccessPointId: ap.AccessPointId })))).toBe('AccessPointNotFound');
});
