import { CreateVolumeCommand, DeleteVolumeCommand, DescribeVolumesCommand } from '@aws-sdk/client-ec2';
import { errorCode, startTestCloud, type TestCloud } from './helpers.js';

let t: TestCloud;
beforeAll(async () => {
  t = await startTestCloud();
});
afterAll(async () => t?.close());

const create = (ClientToken: string, Size: number) =>
  t.ec2.send(new CreateVolumeCommand({ AvailabilityZone: 'us-east-1a', Size, VolumeType: 'gp3', ClientToken }));

async function deleted(id: string): Promise<void> {
  await t.ec2.send(new DescribeVolumesCommand({ VolumeIds: [id] }));
  await t.ec2.send(new DeleteVolumeCommand({ VolumeId: id }));
  expect(await errorCode(t.ec2.send(new DescribeVolumesCommand({ VolumeIds: [id] })))).toBe('InvalidVolume.NotFound');
}

test('a token outlives its volume: the same parameters answer the deleted volume, others IdempotentParameterMismatch', async () => {
  const original = await create('tok-gone', 2);
  await deleted(original.VolumeId!);

  const retry = await create('tok-gone', 2);
  expect(retry).toMatchObject({ VolumeId: original.VolumeId, State: 'deleted', Size: 2, AvailabilityZone: 'us-east-1a' });
  expect(await errorCode(create('tok-gone', 3))).toBe('IdempotentParameterMismatch');
  // no volume was made by either
  expect((await t.ec2.send(new DescribeVolumesCommand({}))).Volumes).toEqual([]);
});

test('tokens survive a restart of localcloud', async () => {
  const original = await create('tok-kept', 1);
  await deleted(original.VolumeId!);
  await t.restart();
  expect((await create('tok-kept', 1)).VolumeId).toBe(original.VolumeId);
  expect(await errorCode(create('tok-kept', 4))).toBe('IdempotentParameterMismatch');
});
