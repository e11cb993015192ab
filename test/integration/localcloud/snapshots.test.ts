import {
  CreateSnapshotCommand,
  CreateTagsCommand,
  CreateVolumeCommand,
  DeleteSnapshotCommand,
  DeleteTagsCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
} from '@aws-sdk/client-ec2';
import { errorCode, startTestCloud, type TestCloud } from './helpers.js';

let t: TestCloud;
let volumeId: string;

beforeAll(async () => {
  t = await startTestCloud();
  volumeId = (await t.ec2.send(new CreateVolumeCommand({ AvailabilityZone: 'us-east-1a', Size: 3 }))).VolumeId!;
});
afterAll(async () => t?.close());

test('CreateSnapshot answers pending; the next Describe shows completed at 100%', async () => {
  await t.ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }));
  const s = await t.ec2.send(
    new CreateSnapshotCommand({ VolumeId: volumeId, Description: 'first', TagSpecifications: [{ ResourceType: 'snapshot', Tags: [{ Key: 'stowage:volume', Value: 'db' }] }] }),
  );
  expect(s).toMatchObject({ State: 'pending', Progress: '0%', VolumeId: volumeId, VolumeSize: 3, Description: 'first', OwnerId: '123456789012', Tags: [{ Key: 'stowage:volume', Value: 'db' }] });
  expect(s.SnapshotId).toMatch(/^snap-[0-9a-f]{17}$/);
  const d = await t.ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [s.SnapshotId!], OwnerIds: ['self'] }));
  expect(d.Snapshots).toEqual([expect.objectContaining({ SnapshotId: s.SnapshotId, State: 'completed', Progress: '100%', StartTime: expect.any(Date) })]);

  const restored = await t.ec2.send(new CreateVolumeCommand({ AvailabilityZone: 'us-east-1b', SnapshotId: s.SnapshotId }));
  expect(restored).toMatchObject({ Size: 3, SnapshotId: s.SnapshotId, State: 'creating' });
  expect(await errorCode(t.ec2.send(new CreateVolumeCommand({ AvailabilityZone: 'us-east-1b', SnapshotId: s.SnapshotId, Size: 2 })))).toBe('InvalidParameterValue');
});

test('DescribeSnapshots: tags, filters, paging, unknown ids; tags; DeleteSnapshot', async () => {
  const ids: string[] = [];
  for (let n = 0; n < 6; n++) ids.push((await t.ec2.send(new CreateSnapshotCommand({ VolumeId: volumeId, Description: `n${n}` }))).SnapshotId!);
  await t.ec2.send(new CreateTagsCommand({ Resources: [ids[0]!], Tags: [{ Key: 'mark', Value: 'x' }] }));
  const byTag = await t.ec2.send(new DescribeSnapshotsCommand({ Filters: [{ Name: 'tag:mark', Values: ['x'] }] }));
  expect(byTag.Snapshots!.map((s) => s.SnapshotId)).toEqual([ids[0]]);
  await t.ec2.send(new DeleteTagsCommand({ Resources: [ids[0]!], Tags: [{ Key: 'mark' }] }));
  expect((await t.ec2.send(new DescribeSnapshotsCommand({ Filters: [{ Name: 'tag-key', Values: ['mark'] }] }))).Snapshots).toEqual([]);
  const byDescription = await t.ec2.send(new DescribeSnapshotsCommand({ Filters: [{ Name: 'description', Values: ['n*'] }, { Name: 'status', Values: ['completed'] }] }));
  expect(byDescription.Snapshots).toHaveLength(6);

  const page1 = await t.ec2.send(new DescribeSnapshotsCommand({ Filters: [{ Name: 'volume-id', Values: [volumeId] }], MaxResults: 5 }));
  const page2 = await t.ec2.send(new DescribeSnapshotsCommand({ Filters: [{ Name: 'volume-id', Values: [volumeId] }], MaxResults: 5, NextToken: page1.NextToken }));
  expect(page1.Snapshots!.length + page2.Snapshots!.length).toBe(7);
  expect(page2.NextToken).toBeUndefined();

  expect(await errorCode(t.ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: ['snap-00000000000000000'] })))).toBe('InvalidSnapshot.NotFound');
  expect(await errorCode(t.ec2.send(new CreateSnapshotCommand({ VolumeId: 'vol-00000000000000000' })))).toBe('InvalidVolume.NotFound');
  await t.ec2.send(new DeleteSnapshotCommand({ SnapshotId: ids[1] }));
  expect(await errorCode(t.ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [ids[1]!] })))).toBe('InvalidSnapshot.NotFound');
  expect(await errorCode(t.ec2.send(new DeleteSnapshotCommand({ SnapshotId: ids[1] })))).toBe('InvalidSnapshot.NotFound');
});
