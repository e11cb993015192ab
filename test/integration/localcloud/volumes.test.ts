import { readlink, stat } from 'node:fs/promises';
import {
  AttachVolumeCommand,
  CreateVolumeCommand,
  DeleteVolumeCommand,
  DescribeInstancesCommand,
  DescribeVolumesCommand,
  DetachVolumeCommand,
  ModifyVolumeCommand,
  type Volume,
} from '@aws-sdk/client-ec2';
import { errorCode, loopsUnder, runInstance, startTestCloud, type TestCloud } from './helpers.js';

let t: TestCloud;
let i1: string;
let i2: string;
const zoneA = 'us-east-1a';
const zoneB = 'us-east-1b';

beforeAll(async () => {
  t = await startTestCloud();
  i1 = await runInstance(t, zoneA);
  i2 = await runInstance(t, zoneB);
});

afterAll(async () => {
  await t?.close();
  expect(t ? loopsUnder(t.dir) : []).toEqual([]);
});

async function describe1(id: string): Promise<Volume> {
  return (await t.ec2.send(new DescribeVolumesCommand({ VolumeIds: [id] }))).Volumes![0]!;
}

async function create(extra: Partial<ConstructorParameters<typeof CreateVolumeCommand>[0]> = {}) {
  return t.ec2.send(new CreateVolumeCommand({ AvailabilityZone: zoneA, Size: 1, VolumeType: 'gp3', ...extra }));
}

test('CreateVolume answers creating, with tags and type defaults; the next Describe shows available', async () => {
  const v = await create({
    Encrypted: true,
    KmsKeyId: 'alias/stowage',
    TagSpecifications: [{ ResourceType: 'volume', Tags: [{ Key: 'stowage:volume', Value: 'db' }] }],
  });
  expect(v).toMatchObject({ State: 'creating', Size: 1, VolumeType: 'gp3', Iops: 3000, Throughput: 125, Encrypted: true, KmsKeyId: 'alias/stowage', AvailabilityZone: zoneA });
  expect(v.VolumeId).toMatch(/^vol-[0-9a-f]{17}$/);
  expect(v.Tags).toEqual([{ Key: 'stowage:volume', Value: 'db' }]);
  expect(v.CreateTime).toBeInstanceOf(Date);
  expect(await describe1(v.VolumeId!)).toMatchObject({ State: 'available', Attachments: [] });
  const file = await stat(`${t.lc.dir}/volumes/${v.VolumeId}.img`);
  expect(file.size).toBe(1024 ** 3);
  expect(file.blocks).toBe(0); // sparse
});

test('CreateVolume validates like EC2', async () => {
  expect(await errorCode(t.ec2.send(new CreateVolumeCommand({ AvailabilityZone: zoneA })))).toBe('MissingParameter');
  expect(await errorCode(create({ AvailabilityZone: 'us-east-1z' }))).toBe('InvalidParameterValue');
  expect(await errorCode(create({ VolumeType: 'gp2', Iops: 3000 }))).toBe('InvalidParameterCombination');
  expect(await errorCode(create({ VolumeType: 'gp2', Throughput: 200 }))).toBe('InvalidParameterCombination');
  expect(await errorCode(create({ Iops: 100 }))).toBe('InvalidParameterValue');
  expect(await errorCode(create({ Size: 20000 }))).toBe('InvalidParameterValue');
  expect(await errorCode(create({ VolumeType: 'io2', Size: 10 }))).toBe('MissingParameter');
  expect(await errorCode(create({ KmsKeyId: 'k' }))).toBe('InvalidParameterDependency');
  expect(await errorCode(create({ SnapshotId: 'snap-00000000000000000' }))).toBe('InvalidSnapshot.NotFound');
  expect(await errorCode(create({ TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'a', Value: 'b' }] }] }))).toBe(
    'InvalidParameterValue',
  );
});

test('ClientToken makes CreateVolume idempotent; reuse with other parameters is IdempotentParameterMismatch', async () => {
  const a = await create({ ClientToken: 'tok-1', Size: 2 });
  const b = await create({ ClientToken: 'tok-1', Size: 2 });
  expect(b.VolumeId).toBe(a.VolumeId);
  expect(b.State).toBe('available');
  expect(await errorCode(create({ ClientToken: 'tok-1', Size: 3 }))).toBe('IdempotentParameterMismatch');
});

test('DescribeVolumes: unknown ids, filters, paging', async () => {
  expect(await errorCode(t.ec2.send(new DescribeVolumesCommand({ VolumeIds: ['vol-00000000000000000'] })))).toBe('InvalidVolume.NotFound');
  const tagged = await create({ TagSpecifications: [{ ResourceType: 'volume', Tags: [{ Key: 'pager', Value: 'yes' }] }] });
  for (let n = 0; n < 6; n++) await create({ TagSpecifications: [{ ResourceType: 'volume', Tags: [{ Key: 'pager', Value: `p${n}` }] }] });
  await create({ AvailabilityZone: zoneB });

  const byTag = await t.ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'tag:pager', Values: ['yes'] }] }));
  expect(byTag.Volumes!.map((v) => v.VolumeId)).toEqual([tagged.VolumeId]);
  const byKey = await t.ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'tag-key', Values: ['pager'] }] }));
  expect(byKey.Volumes).toHaveLength(7);
  const glob = await t.ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'tag:pager', Values: ['p?'] }] }));
  expect(glob.Volumes).toHaveLength(6);
  const zoneBVolumes = await t.ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'availability-zone', Values: [zoneB] }] }));
  expect(zoneBVolumes.Volumes!.every((v) => v.AvailabilityZone === zoneB)).toBe(true);
  const byIdFilter = await t.ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'volume-id', Values: [tagged.VolumeId!] }, { Name: 'status', Values: ['available'] }] }));
  expect(byIdFilter.Volumes).toHaveLength(1);
  expect(await errorCode(t.ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'colour', Values: ['x'] }] })))).toBe('InvalidParameterValue');

  const seen: string[] = [];
  let NextToken: string | undefined;
  let pages = 0;
  do {
    const page = await t.ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'tag-key', Values: ['pager'] }], MaxResults: 5, NextToken }));
    seen.push(...page.Volumes!.map((v) => v.VolumeId!));
    NextToken = page.NextToken;
    pages++;
  } while (NextToken);
  expect(pages).toBe(2);
  expect(new Set(seen).size).toBe(7);
  expect(await errorCode(t.ec2.send(new DescribeVolumesCommand({ VolumeIds: [tagged.VolumeId!], MaxResults: 5 })))).toBe('InvalidParameterCombination');
  expect(await errorCode(t.ec2.send(new DescribeVolumesCommand({ MaxResults: 2 })))).toBe('InvalidParameterValue');
});

test('attach: attaching, then attached with a device link; errors; detach; delete', async () => {
  const v = (await create()).VolumeId!;
  await describe1(v);
  const att = await t.ec2.send(new AttachVolumeCommand({ VolumeId: v, InstanceId: i1, Device: '/dev/sdf' }));
  expect(att).toMatchObject({ State: 'attaching', InstanceId: i1, VolumeId: v, Device: '/dev/sdf' });
  const attached = await describe1(v);
  expect(attached.State).toBe('in-use');
  expect(attached.Attachments).toEqual([expect.objectContaining({ State: 'attached', InstanceId: i1, Device: '/dev/sdf', DeleteOnTermination: false })]);
  const link = `${t.lc.deviceDir(i1)}/nvme-Amazon_Elastic_Block_Store_${v.replace('-', '')}`;
  expect(await readlink(link)).toMatch(/^\/dev\/loop\d+$/);
  expect(loopsUnder(t.lc.dir)).toHaveLength(1);

  const inst = (await t.ec2.send(new DescribeInstancesCommand({ InstanceIds: [i1] }))).Reservations![0]!.Instances![0]!;
  expect(inst.BlockDeviceMappings).toEqual([{ DeviceName: '/dev/sdf', Ebs: expect.objectContaining({ VolumeId: v, Status: 'attached' }) }]);

  const other = (await create()).VolumeId!;
  const inB = (await create({ AvailabilityZone: zoneB })).VolumeId!;
  expect(await errorCode(t.ec2.send(new AttachVolumeCommand({ VolumeId: other, InstanceId: i1, Device: '/dev/sdf' })))).toBe('InvalidParameterValue');
  expect(await errorCode(t.ec2.send(new AttachVolumeCommand({ VolumeId: other, InstanceId: i1, Device: '/dev/xvda' })))).toBe('InvalidParameterValue');
  expect(await errorCode(t.ec2.send(new AttachVolumeCommand({ VolumeId: v, InstanceId: i1, Device: '/dev/sdg' })))).toBe('VolumeInUse');
  expect(await errorCode(t.ec2.send(new AttachVolumeCommand({ VolumeId: inB, InstanceId: i1, Device: '/dev/sdg' })))).toBe('InvalidVolume.ZoneMismatch');
  expect(await errorCode(t.ec2.send(new AttachVolumeCommand({ VolumeId: 'vol-00000000000000000', InstanceId: i1, Device: '/dev/sdg' })))).toBe('InvalidVolume.NotFound');
  expect(await errorCode(t.ec2.send(new AttachVolumeCommand({ VolumeId: other, InstanceId: 'i-00000000000000000', Device: '/dev/sdg' })))).toBe('InvalidInstanceID.NotFound');
  expect(await errorCode(t.ec2.send(new DeleteVolumeCommand({ VolumeId: v })))).toBe('VolumeInUse');
  expect(await errorCode(t.ec2.send(new DetachVolumeCommand({ VolumeId: other })))).toBe('IncorrectState');
  expect(await errorCode(t.ec2.send(new DetachVolumeCommand({ VolumeId: v, InstanceId: i2 })))).toBe('InvalidAttachment.NotFound');

  const det = await t.ec2.send(new DetachVolumeCommand({ VolumeId: v, InstanceId: i1 }));
  expect(det.State).toBe('detaching');
  expect(await describe1(v)).toMatchObject({ State: 'available', Attachments: [] });
  await expect(stat(link)).rejects.toThrow();
  expect(loopsUnder(t.lc.dir)).toHaveLength(0);

  expect(await t.ec2.send(new DeleteVolumeCommand({ VolumeId: v }))).toBeDefined();
  expect(await errorCode(t.ec2.send(new DescribeVolumesCommand({ VolumeIds: [v] })))).toBe('InvalidVolume.NotFound');
  await expect(stat(`${t.lc.dir}/volumes/${v}.img`)).rejects.toThrow();
});

test('ModifyVolume grows the file and reports the modification', async () => {
  const v = (await create()).VolumeId!;
  await describe1(v);
  const out = await t.ec2.send(new ModifyVolumeCommand({ VolumeId: v, Size: 2, Iops: 4000 }));
  expect(out.VolumeModification).toMatchObject({ ModificationState: 'modifying', OriginalSize: 1, TargetSize: 2, TargetIops: 4000, TargetVolumeType: 'gp3' });
  expect(await describe1(v)).toMatchObject({ Size: 2, Iops: 4000 });
  expect((await stat(`${t.lc.dir}/volumes/${v}.img`)).size).toBe(2 * 1024 ** 3);
  expect(await errorCode(t.ec2.send(new ModifyVolumeCommand({ VolumeId: v, Size: 1 })))).toBe('InvalidParameterValue');
});
