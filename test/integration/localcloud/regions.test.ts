import { writeFile } from 'node:fs/promises';
import {
  AttachVolumeCommand,
  CopySnapshotCommand,
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DescribeAvailabilityZonesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  EC2Client,
  RunInstancesCommand,
} from '@aws-sdk/client-ec2';
import { existsSync, readFileSync } from 'node:fs';
import { MetadataService } from '@aws-sdk/ec2-metadata-service';
import { errorCode, loopsUnder, startTestCloud, type TestCloud } from './helpers.js';

const credentials = { accessKeyId: 'x', secretAccessKey: 'x' };
let t: TestCloud;
let west: EC2Client;

const inRegion = (region: string) => new EC2Client({ endpoint: t.lc.url, region, credentials, maxAttempts: 1 });

beforeAll(async () => {
  t = await startTestCloud({ regions: ['us-east-1', 'us-west-2'] });
  west = inRegion('us-west-2');
});
afterAll(async () => {
  west?.destroy();
  await t?.close();
});

async function settled(ec2: EC2Client, snapshotId: string): Promise<void> {
  for (let n = 0; n < 50; n++) {
    const s = (await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }))).Snapshots![0]!;
    if (s.State === 'completed') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${snapshotId} did not complete`);
}

test('each region has its own zones and resources; the signing region picks it', async () => {
  expect(t.lc.regions).toEqual([
    { name: 'us-east-1', zones: ['us-east-1a', 'us-east-1b', 'us-east-1c'] },
    { name: 'us-west-2', zones: ['us-west-2a', 'us-west-2b', 'us-west-2c'] },
  ]);
  const zones = await west.send(new DescribeAvailabilityZonesCommand({}));
  expect(zones.AvailabilityZones!.map((z) => [z.ZoneName, z.RegionName, z.ZoneId])).toEqual([
    ['us-west-2a', 'us-west-2', 'usw2-az1'],
    ['us-west-2b', 'us-west-2', 'usw2-az2'],
    ['us-west-2c', 'us-west-2', 'usw2-az3'],
  ]);
  const eastVolume = (await t.ec2.send(new CreateVolumeCommand({ AvailabilityZone: 'us-east-1a', Size: 1 }))).VolumeId!;
  expect(await errorCode(west.send(new CreateVolumeCommand({ AvailabilityZone: 'us-east-1a', Size: 1 })))).toBe('InvalidParameterValue');
  expect(await errorCode(west.send(new DescribeVolumesCommand({ VolumeIds: [eastVolume] })))).toBe('InvalidVolume.NotFound');
  const westVolume = (await west.send(new CreateVolumeCommand({ AvailabilityZone: 'us-west-2b', Size: 1 }))).VolumeId!;
  expect((await t.ec2.send(new DescribeVolumesCommand({}))).Volumes!.map((v) => v.VolumeId)).not.toContain(westVolume);

  const elsewhere = inRegion('eu-central-1');
  try {
    expect(await errorCode(elsewhere.send(new DescribeVolumesCommand({})))).toBe('AuthFailure');
  } finally {
    elsewhere.destroy();
  }
});

test('CopySnapshot brings the data to the signing region, encrypted with its key, tagged; ClientToken repeats', async () => {
  const volumeId = (await t.ec2.send(new CreateVolumeCommand({ AvailabilityZone: 'us-east-1a', Size: 1 }))).VolumeId!;
  // data without attaching: the emulated volume is its image file
  await writeFile(`${t.lc.dir}/volumes/${volumeId}.img`, 'east data', { flag: 'r+' });
  const source = (await t.ec2.send(new CreateSnapshotCommand({ VolumeId: volumeId }))).SnapshotId!;
  await settled(t.ec2, source);
  t.lc.setFaults({ slowSnapshotMs: 60_000 }, 'us-east-1');
  const pending = (await t.ec2.send(new CreateSnapshotCommand({ VolumeId: volumeId }))).SnapshotId!;
  t.lc.setFaults({}, 'us-east-1');
  expect(await errorCode(west.send(new CopySnapshotCommand({ SourceRegion: 'us-east-1', SourceSnapshotId: pending })))).toBe('IncorrectState');
  expect(await errorCode(west.send(new CopySnapshotCommand({ SourceRegion: 'us-east-1', SourceSnapshotId: 'snap-00000000000000000' })))).toBe(
    'InvalidSnapshot.NotFound',
  );
  expect(await errorCode(west.send(new CopySnapshotCommand({ SourceRegion: 'eu-west-1', SourceSnapshotId: source })))).toBe('InvalidParameterValue');
  expect(await errorCode(west.send(new CopySnapshotCommand({ SourceRegion: 'us-east-1', SourceSnapshotId: source, KmsKeyId: 'alias/dr' })))).toBe(
    'InvalidParameterDependency',
  );

  const copy = await west.send(
    new CopySnapshotCommand({
      SourceRegion: 'us-east-1',
      SourceSnapshotId: source,
      Encrypted: true,
      KmsKeyId: 'alias/dr',
      TagSpecifications: [{ ResourceType: 'snapshot', Tags: [{ Key: 'stowage:volume', Value: 'db' }] }],
    }),
  );
  expect(copy.SnapshotId).toMatch(/^snap-[0-9a-f]{17}$/);
  expect(await errorCode(t.ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [copy.SnapshotId!] })))).toBe('InvalidSnapshot.NotFound');
  await settled(west, copy.SnapshotId!);
  const [described] = (await west.send(new DescribeSnapshotsCommand({ SnapshotIds: [copy.SnapshotId!] }))).Snapshots!;
  expect(described).toMatchObject({
    Encrypted: true,
    KmsKeyId: 'alias/dr',
    VolumeId: 'vol-ffffffff',
    VolumeSize: 1,
    Description: `[Copied ${source} from us-east-1]`,
    Tags: [{ Key: 'stowage:volume', Value: 'db' }],
  });
  const plain = (await west.send(new CopySnapshotCommand({ SourceRegion: 'us-east-1', SourceSnapshotId: source, Encrypted: true }))).SnapshotId!;
  await settled(west, plain);
  expect((await west.send(new DescribeSnapshotsCommand({ SnapshotIds: [plain] }))).Snapshots![0]!.KmsKeyId).toBe('arn:aws:kms:us-west-2:123456789012:alias/aws/ebs');

  // the SDK pinned here has no ClientToken for CopySnapshot; the Query API takes it as EC2 does for creates
  const form = (token: string) =>
    new URLSearchParams({ Action: 'CopySnapshot', Version: '2016-11-15', SourceRegion: 'us-east-1', SourceSnapshotId: source, ClientToken: token }).toString();
  const post = async (token: string) => {
    const res = await fetch(t.lc.url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'AWS4-HMAC-SHA256 Credential=x/20250101/us-west-2/ec2/aws4_request, SignedHeaders=host, Signature=0' },
      body: form(token),
    });
    return /<snapshotId>(snap-[0-9a-f]+)<\/snapshotId>/.exec(await res.text())?.[1];
  };
  const once = await post('dr-1');
  expect(once).toMatch(/^snap-/);
  expect(await post('dr-1')).toBe(once);
  expect(await post('dr-2')).not.toBe(once);

  // the copy's data, in a volume of the second region, attached to an instance there
  const instance = (await west.send(new RunInstancesCommand({ MinCount: 1, MaxCount: 1, Placement: { AvailabilityZone: 'us-west-2a' } }))).Instances![0]!.InstanceId!;
  const restored = (await west.send(new CreateVolumeCommand({ AvailabilityZone: 'us-west-2a', SnapshotId: copy.SnapshotId }))).VolumeId!;
  expect((await west.send(new DescribeVolumesCommand({ VolumeIds: [restored] }))).Volumes![0]).toMatchObject({ Encrypted: true, KmsKeyId: 'alias/dr' });
  await west.send(new AttachVolumeCommand({ VolumeId: restored, InstanceId: instance, Device: '/dev/sdf' }));
  await west.send(new DescribeVolumesCommand({ VolumeIds: [restored] }));
  const device = `${t.lc.deviceDir(instance)}/nvme-Amazon_Elastic_Block_Store_${restored.replace('-', '')}`;
  for (let n = 0; n < 50 && !existsSync(device); n++) await new Promise((r) => setTimeout(r, 100));
  expect(readFileSync(device).subarray(0, 9).toString()).toBe('east data');
  expect(loopsUnder(`${t.lc.dir}/regions/us-west-2/volumes`)).toHaveLength(1);

  // IMDS answers the instance with its own region
  const imds = new MetadataService({ endpoint: t.lc.imdsEndpoint(instance), retries: 0 });
  expect(await imds.request('/latest/meta-data/placement/region', {})).toBe('us-west-2');
});

test('every region persists across a restart, its attachments kept', async () => {
  const before = (await west.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots!.map((s) => s.SnapshotId).sort();
  expect(before.length).toBeGreaterThan(0);
  await t.restart();
  west.destroy();
  west = inRegion('us-west-2');
  const after = (await west.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots!.map((s) => s.SnapshotId).sort();
  expect(after).toEqual(before);
  expect(loopsUnder(`${t.lc.dir}/regions/us-west-2/volumes`)).toHaveLength(1);
});
