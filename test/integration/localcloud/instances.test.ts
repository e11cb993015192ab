import {
  CreateTagsCommand,
  DeleteTagsCommand,
  DescribeAvailabilityZonesCommand,
  DescribeInstancesCommand,
  DescribeSubnetsCommand,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
  type Instance,
} from '@aws-sdk/client-ec2';
import { errorCode, runInstance, startTestCloud, type TestCloud } from './helpers.js';

let t: TestCloud;

beforeAll(async () => {
  t = await startTestCloud({ zones: ['eu-west-1a', 'eu-west-1b'], region: 'eu-west-1' });
});
afterAll(async () => t?.close());

async function instance(id: string): Promise<Instance> {
  return (await t.ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0]!.Instances![0]!;
}

test('availability zones and one default subnet per zone', async () => {
  const zones = await t.ec2.send(new DescribeAvailabilityZonesCommand({}));
  expect(zones.AvailabilityZones).toEqual([
    expect.objectContaining({ ZoneName: 'eu-west-1a', State: 'available', RegionName: 'eu-west-1', ZoneId: 'euw1-az1' }),
    expect.objectContaining({ ZoneName: 'eu-west-1b', ZoneId: 'euw1-az2' }),
  ]);
  expect(await errorCode(t.ec2.send(new DescribeAvailabilityZonesCommand({ ZoneNames: ['eu-west-1z'] })))).toBe('InvalidParameterValue');
  const subnets = await t.ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: 'availability-zone', Values: ['eu-west-1b'] }] }));
  expect(subnets.Subnets).toEqual([expect.objectContaining({ AvailabilityZone: 'eu-west-1b', DefaultForAz: true, CidrBlock: '172.31.16.0/20', State: 'available' })]);
  expect(await errorCode(t.ec2.send(new DescribeSubnetsCommand({ SubnetIds: ['subnet-00000000000000000'] })))).toBe('InvalidSubnetID.NotFound');
});

test('RunInstances: pending, then running, with placement and tags', async () => {
  const out = await t.ec2.send(
    new RunInstancesCommand({
      MinCount: 2,
      MaxCount: 2,
      ImageId: 'ami-1',
      InstanceType: 'm5.large',
      Placement: { AvailabilityZone: 'eu-west-1b' },
      TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'Name', Value: 'node' }] }],
    }),
  );
  expect(out.Instances).toHaveLength(2);
  const [a] = out.Instances!;
  expect(a).toMatchObject({ State: { Code: 0, Name: 'pending' }, InstanceType: 'm5.large', Placement: { AvailabilityZone: 'eu-west-1b' }, Tags: [{ Key: 'Name', Value: 'node' }] });
  expect(a!.PrivateIpAddress).toMatch(/^172\.31\.17\.\d+$/);
  expect(await instance(a!.InstanceId!)).toMatchObject({ State: { Code: 16, Name: 'running' } });
  expect(await errorCode(t.ec2.send(new RunInstancesCommand({ MinCount: 1, MaxCount: 1, Placement: { AvailabilityZone: 'us-east-1a' } })))).toBe(
    'InvalidParameterValue',
  );
  expect(await errorCode(t.ec2.send(new RunInstancesCommand({ MinCount: 1, MaxCount: 1, SubnetId: 'subnet-00000000000000000' })))).toBe(
    'InvalidSubnetID.NotFound',
  );
});

test('DescribeInstances: unknown ids, filters, paging by reservation', async () => {
  expect(await errorCode(t.ec2.send(new DescribeInstancesCommand({ InstanceIds: ['i-00000000000000000'] })))).toBe('InvalidInstanceID.NotFound');
  const ids: string[] = [];
  for (let n = 0; n < 6; n++) ids.push(await runInstance(t, 'eu-west-1a', { role: 'pager' }));
  const byTag = await t.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:role', Values: ['pager'] }, { Name: 'instance-state-name', Values: ['running'] }] }));
  expect(byTag.Reservations!.flatMap((r) => r.Instances!.map((i) => i.InstanceId))).toEqual(ids);
  const first = await t.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag-key', Values: ['role'] }], MaxResults: 5 }));
  expect(first.Reservations).toHaveLength(5);
  const second = await t.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag-key', Values: ['role'] }], MaxResults: 5, NextToken: first.NextToken }));
  expect(second.Reservations).toHaveLength(1);
  expect(second.NextToken).toBeUndefined();
});

test('heartbeat tags on an instance: CreateTags, DescribeInstances, DeleteTags', async () => {
  const id = await runInstance(t, 'eu-west-1a');
  await t.ec2.send(new CreateTagsCommand({ Resources: [id], Tags: [{ Key: 'stowage:heartbeat', Value: '2026-01-01T00:00:00Z' }, { Key: 'keep', Value: '1' }] }));
  expect((await instance(id)).Tags).toEqual([
    { Key: 'stowage:heartbeat', Value: '2026-01-01T00:00:00Z' },
    { Key: 'keep', Value: '1' },
  ]);
  await t.ec2.send(new DeleteTagsCommand({ Resources: [id], Tags: [{ Key: 'keep', Value: 'other' }] }));
  expect((await instance(id)).Tags).toHaveLength(2);
  await t.ec2.send(new DeleteTagsCommand({ Resources: [id], Tags: [{ Key: 'keep' }] }));
  expect((await instance(id)).Tags).toEqual([{ Key: 'stowage:heartbeat', Value: '2026-01-01T00:00:00Z' }]);
  expect(await errorCode(t.ec2.send(new CreateTagsCommand({ Resources: ['i-00000000000000000'], Tags: [{ Key: 'a', Value: 'b' }] })))).toBe(
    'InvalidInstanceID.NotFound',
  );
  expect(await errorCode(t.ec2.send(new CreateTagsCommand({ Resources: [id], Tags: [{ Key: 'aws:x', Value: 'b' }] })))).toBe('InvalidParameterValue');
  expect(await errorCode(t.ec2.send(new CreateTagsCommand({ Resources: ['ami-1'], Tags: [{ Key: 'a', Value: 'b' }] })))).toBe('InvalidID');
});

test('stop, start and terminate move through their states', async () => {
  const id = await runInstance(t, 'eu-west-1a');
  await instance(id);
  const stop = await t.ec2.send(new StopInstancesCommand({ InstanceIds: [id] }));
  expect(stop.StoppingInstances).toEqual([{ InstanceId: id, PreviousState: { Code: 16, Name: 'running' }, CurrentState: { Code: 64, Name: 'stopping' } }]);
  expect((await instance(id)).State!.Name).toBe('stopped');
  const start = await t.ec2.send(new StartInstancesCommand({ InstanceIds: [id] }));
  expect(start.StartingInstances![0]!.CurrentState!.Name).toBe('pending');
  expect((await instance(id)).State!.Name).toBe('running');
  const term = await t.ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
  expect(term.TerminatingInstances![0]!.CurrentState!.Name).toBe('shutting-down');
  expect((await instance(id)).State!.Name).toBe('terminated');
  expect(await errorCode(t.ec2.send(new StartInstancesCommand({ InstanceIds: [id] })))).toBe('IncorrectInstanceState');
  expect(await errorCode(t.ec2.send(new StopInstancesCommand({ InstanceIds: [id] })))).toBe('IncorrectInstanceState');
});
