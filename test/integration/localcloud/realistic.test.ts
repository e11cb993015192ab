import { AttachVolumeCommand, CreateVolumeCommand, DescribeInstancesCommand, DescribeVolumesCommand } from '@aws-sdk/client-ec2';
import { CreateAccessPointCommand, CreateFileSystemCommand } from '@aws-sdk/client-efs';
import { errorCode, runInstance, startTestCloud, type TestCloud } from './helpers.js';

let t: TestCloud;
beforeAll(async () => {
  t = await startTestCloud({ latency: 'realistic' });
});
afterAll(async () => t?.close());

async function until<T>(read: () => Promise<T>, done: (v: T) => boolean, timeoutMs: number): Promise<{ value: T; ms: number }> {
  const start = Date.now();
  for (;;) {
    const value = await read();
    if (done(value)) return { value, ms: Date.now() - start };
    if (Date.now() - start > timeoutMs) throw new Error(`not done after ${timeoutMs} ms: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('realistic latency: instances boot, volumes create and attach over seconds, refusing attach while creating', async () => {
  const instance = await runInstance(t, 'us-east-1b');
  const booted = await until(
    async () => (await t.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instance] }))).Reservations![0]!.Instances![0]!.State!.Name,
    (s) => s === 'running',
    20000,
  );
  expect(booted.ms).toBeGreaterThan(5000);
  const vol = (await t.ec2.send(new CreateVolumeCommand({ AvailabilityZone: 'us-east-1b', Size: 1 }))).VolumeId!;
  const describe = async () => (await t.ec2.send(new DescribeVolumesCommand({ VolumeIds: [vol] }))).Volumes![0]!;
  expect(await errorCode(t.ec2.send(new AttachVolumeCommand({ VolumeId: vol, InstanceId: instance, Device: '/dev/sdf' })))).toBe('IncorrectState');
  const created = await until(describe, (v) => v.State === 'available', 5000);
  expect(created.ms).toBeGreaterThan(500);
  await t.ec2.send(new AttachVolumeCommand({ VolumeId: vol, InstanceId: instance, Device: '/dev/sdf' }));
  expect((await describe()).Attachments![0]!.State).toBe('attaching');
  const attached = await until(describe, (v) => v.Attachments![0]?.State === 'attached', 6000);
  expect(attached.ms).toBeGreaterThan(800);
}, 40000);

test('realistic latency: an EFS file system is creating for a while', async () => {
  const fsId = (await t.efs.send(new CreateFileSystemCommand({ CreationToken: 'slow' }))).FileSystemId!;
  expect(await errorCode(t.efs.send(new CreateAccessPointCommand({ ClientToken: 'a', FileSystemId: fsId })))).toBe('IncorrectFileSystemLifeCycleState');
});
