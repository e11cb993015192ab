import { AttachVolumeCommand, CreateVolumeCommand, DescribeVolumesCommand } from '@aws-sdk/client-ec2';
import type { CallCounter } from '../../../aws/call-counter.js';
import type { EbsDriver } from '../../../drivers/ebs/ebs-driver.js';
import { CloudError, DataSafetyError, HostError, PendingError, VolumeBusyError, VolumeConflictError, VolumeNotFoundError, StowageError } from '../../../core/errors.js';
import type { Logger } from '../../../core/log.js';
import { ec2Error } from '../aws/ec2-error.js';
import { driverWorld, ME, OTHER, type DriverWorld } from './driver-world.js';
import { FakeEc2 } from './fake-ec2.js';
import type { FakeHost } from './fake-host.js';
import { gp3Options } from '../../helpers/volume-options.js';

const ZONE = 'us-east-1a';

const GP3 = gp3Options(10);

let ec2: FakeEc2;
let host: FakeHost;
let counter: CallCounter;
let logLines: Record<string, unknown>[];
let log: Logger;
let makeDriver: DriverWorld['makeDriver'];
let driver: EbsDriver;

function ctx(name: string, ms = 3000) {
  return { deadline: Date.now() + ms, log: log.child({ volume: name }) };
}

function heartbeat(agoMs: number) {
  return [{ Key: 'stowage:heartbeat', Value: String(Math.floor((Date.now() - agoMs) / 1000)) }];
}

beforeEach(() => {
  ({ ec2, host, counter, log, logLines, makeDriver } = driverWorld(ZONE));
  driver = makeDriver();
});
afterEach(async () => {
  await driver.stop();
  ec2.mock.restore();
});

describe('create', () => {
  test('a new volume: look up by tag, CreateVolume in this zone with tags and a token of its own, wait for available, look for a racing twin', async () => {
    await driver.create('data', GP3, ctx('data'));
    expect(ec2.sequence()).toEqual(['DescribeVolumes', 'CreateVolume', 'DescribeVolumes', 'DescribeVolumes']);
    expect(ec2.input('DescribeVolumes', 0).Filters).toEqual(expect.arrayContaining([
      { Name: 'tag:stowage:cluster', Values: ['test'] },
      { Name: 'tag:stowage:volume', Values: ['data'] },
    ]));
    const input = ec2.input('CreateVolume');
    expect(input).toMatchObject({ AvailabilityZone: ZONE, Size: 10, VolumeType: 'gp3', Iops: 3000, Throughput: 125, Encrypted: true });
    expect(input.ClientToken).toMatch(/^[0-9a-f-]{36}$/);
    const tags = (input.TagSpecifications as { ResourceType: string; Tags: { Key: string; Value: string }[] }[])[0]!;
    expect(tags.ResourceType).toBe('volume');
    expect(tags.Tags).toEqual(expect.arrayContaining([
      { Key: 'stowage:cluster', Value: 'test' },
      { Key: 'stowage:volume', Value: 'data' },
      { Key: 'stowage:backing', Value: 'relocatable' },
      { Key: 'stowage:generation', Value: '1' },
      { Key: 'stowage:fs', Value: 'ext4' },
      { Key: 'stowage:mountopts', Value: '' },
    ]));
  });

  test('issue 15.7: a Create keeps its token across retries; the next Create of the name (after a Remove) has another', async () => {
    let failed = false;
    ec2.mock.on(CreateVolumeCommand).callsFake((input) => {
      if (!failed) {
        failed = true;
        throw ec2Error('InternalError', 500);
      }
      return ec2.handleCreateVolume(input);
    });
    await driver.create('data', GP3, ctx('data'));
    expect(ec2.input('CreateVolume', 0).ClientToken).toEqual(ec2.input('CreateVolume', 1).ClientToken);
    await driver.remove('data', ctx('data'));
    await driver.create('data', { ...GP3, size: 20 }, ctx('data'));
    expect(ec2.input('CreateVolume', 2).ClientToken).not.toEqual(ec2.input('CreateVolume', 0).ClientToken);
    expect([...ec2.volumes.values()].map((v) => v.Size)).toEqual([20]);
  });

  test('snapshot= restores from it, and the option is recorded in a tag', async () => {
    await driver.create('data', { ...GP3, snapshot: 'snap-0123456789abcdef0', fs: 'xfs', mountopts: ['noatime'] }, ctx('data'));
    const input = ec2.input('CreateVolume');
    expect(input.SnapshotId).toBe('snap-0123456789abcdef0');
    const tags = (input.TagSpecifications as { Tags: { Key: string; Value: string }[] }[])[0]!.Tags;
    expect(tags).toEqual(expect.arrayContaining([
      { Key: 'stowage:snapshot', Value: 'snap-0123456789abcdef0' },
      { Key: 'stowage:fs', Value: 'xfs' },
      { Key: 'stowage:mountopts', Value: 'noatime' },
    ]));
  });

  test('the same name with the same options anywhere in the cluster (another zone too) is a no-op', async () => {
    ec2.addVolume('data', 'us-east-1c');
    await driver.create('data', GP3, ctx('data'));
    expect(ec2.sequence()).toEqual(['DescribeVolumes']);
  });

  test('the same name with other options is a conflict naming the differing keys', async () => {
    ec2.addVolume('data', ZONE, { Size: 20 });
    const err = (await driver.create('data', { ...GP3, fs: 'xfs' }, ctx('data')).catch((e: unknown) => e)) as VolumeConflictError;
    expect(err).toBeInstanceOf(VolumeConflictError);
    expect(err.message).toBe('volume data already exists with other options: size=20 (asked 10), fs=ext4 (asked xfs)');
    expect(ec2.sequence()).toEqual(['DescribeVolumes']);
  });

  test('two nodes creating one name at once: the younger volume is deleted by its maker, one volume stays', async () => {
    const other = makeDriver({ identity: { instanceId: OTHER, zone: 'us-east-1b', region: 'us-east-1' } });
    // Both missed the name: neither CreateVolume answers before both were sent.
    let arrived = 0;
    let bothSent: () => void = () => undefined;
    const barrier = new Promise<void>((resolve) => (bothSent = resolve));
    ec2.mock.on(CreateVolumeCommand).callsFake(async (input) => {
      if (++arrived === 2) bothSent();
      await barrier;
      return ec2.handleCreateVolume(input);
    });
    await Promise.all([driver.create('data', GP3, ctx('data')), other.create('data', GP3, ctx('data'))]);
    expect(ec2.sequence().filter((op) => op === 'CreateVolume')).toHaveLength(2);
    expect([...ec2.volumes.values()].filter((v) => v.Tags?.some((t) => t.Value === 'data'))).toHaveLength(1);
    await other.stop();
  });
});

describe('get and list', () => {
  test('one tag-filtered DescribeVolumes serves List and Get until the cache expires or we change something', async () => {
    const a = ec2.addVolume('data', ZONE);
    ec2.addVolume('logs', 'us-east-1c', { State: 'in-use', Attachments: [{ InstanceId: OTHER, State: 'attached', Device: '/dev/xvdbc' }] });
    ec2.addVolume('theirs', ZONE, {}, [{ Key: 'stowage:cluster', Value: 'other' }]);
    ec2.volumes.get([...ec2.volumes.keys()][2]!)!.Tags = ec2.volumes.get([...ec2.volumes.keys()][2]!)!.Tags!.filter((t) => !(t.Key === 'stowage:cluster' && t.Value === 'test'));

    const listed = await driver.list(ctx(''));
    expect(listed.map((v) => v.name).sort()).toEqual(['data', 'logs']);
    const logs = await driver.get('logs', ctx('logs'));
    expect(ec2.sequence()).toEqual(['DescribeVolumes']);
    // A miss is checked with EC2 (by name): the volume may have been made by another node since.
    expect(await driver.get('nope', ctx('nope'))).toBeUndefined();
    expect(ec2.sequence()).toEqual(['DescribeVolumes', 'DescribeVolumes']);
    expect(ec2.input('DescribeVolumes').Filters).toEqual(expect.arrayContaining([{ Name: 'tag:stowage:cluster', Values: ['test'] }]));
    expect(logs).toEqual({
      name: 'logs',
      backing: 'relocatable',
      createdAt: '2024-05-01T10:00:00.000Z',
      status: {
        backing: 'relocatable', volumeId: expect.stringMatching(/^vol-/), zone: 'us-east-1c', size: 10, type: 'gp3', iops: 3000,
        throughput: 125, state: 'in-use', attachedTo: OTHER, attachment: 'attached', generation: 1, fs: 'ext4', encrypted: true,
      },
      options: { backing: 'relocatable', size: 10, ebstype: 'gp3', iops: 3000, throughput: 125, encrypted: true, fs: 'ext4', mountopts: [], uid: 0, gid: 0, mode: '0755', backupretain: 7 },
    });
    expect(logs!.mountpoint).toBeUndefined();

    host.mounted.push({ mountId: 1, target: '/mnt/stowage/data', source: '/dev/nvme1n1', fstype: 'ext4', root: '/', options: 'rw' });
    expect((await driver.get('data', ctx('data')))!.mountpoint).toBe('/mnt/stowage/data');
    await driver.remove('logs', ctx('logs')).catch(() => undefined);
    await driver.list(ctx(''));
    // The Remove's look-up, its fresh look before refusing (logs is attached), and List's refill.
    expect(ec2.sequence().filter((op) => op === 'DescribeVolumes')).toHaveLength(5);
    expect(a).toMatch(/^vol-/);
  });

  test('List hands out the same VolumeInfo while the volume and its mount are unchanged, and a new one when they change', async () => {
    ec2.addVolume('data', ZONE);
    const [first] = await driver.list(ctx(''));
    const [again] = await driver.list(ctx(''));
    expect(again).toBe(first);
    expect(await driver.get('data', ctx('data'))).toBe(first);

    host.mounted.push({ mountId: 1, target: '/mnt/stowage/data', source: '/dev/nvme1n1', fstype: 'ext4', root: '/', options: 'rw' });
    const [mounted] = await driver.list(ctx(''));
    expect(mounted).not.toBe(first);
    expect(mounted!.mountpoint).toBe('/mnt/stowage/data');
    expect(first!.mountpoint).toBeUndefined();
  });

  test('List pages through DescribeVolumes', async () => {
    ec2.mock.on(DescribeVolumesCommand)
      .resolvesOnce({ Volumes: [ec2.volumes.get(ec2.addVolume('a', ZONE))!], NextToken: 'page-2' })
      .resolvesOnce({ Volumes: [ec2.volumes.get(ec2.addVolume('b', ZONE))!] });
    expect((await driver.list(ctx(''))).map((v) => v.name)).toEqual(['a', 'b']);
    expect(ec2.input('DescribeVolumes', 1).NextToken).toBe('page-2');
  });
});

describe('mount', () => {
  test('a detached volume in this zone: attach on a fresh name, wait, format the blank device, mount — in ≤ 6 EC2 calls', async () => {
    const id = ec2.addVolume('data', ZONE);
    await expect(driver.mount('data', ctx('data'))).resolves.toBe('/mnt/stowage/data');
    // The last call is the formatted mark, right after the first mkfs (invariant 9).
    expect(ec2.sequence()).toEqual(['DescribeVolumes', 'DescribeInstances', 'AttachVolume', 'DescribeVolumes', 'CreateTags']);
    expect(counter.count()).toBeLessThanOrEqual(6);
    expect(ec2.input('AttachVolume')).toEqual({ VolumeId: id, InstanceId: ME, Device: '/dev/xvdba' });
    expect(host.calls).toEqual([
      // Watching for the attachment's device, by volume id only.
      `findDevice ${id}`,
      `findDevice ${id} /dev/xvdba`,
      `probe /dev/nvme-${id}`,
      `mkfs /dev/nvme-${id} ext4`,
      `mount /dev/nvme-${id} /mnt/stowage/data ext4`,
    ]);
  });

  test('Mounts arriving together share one DescribeInstances and still get a device name each', async () => {
    const ids = ['a', 'b', 'c'].map((name) => ec2.addVolume(name, ZONE));
    await expect(Promise.all(['a', 'b', 'c'].map((name) => driver.mount(name, ctx(name))))).resolves.toEqual(['/mnt/stowage/a', '/mnt/stowage/b', '/mnt/stowage/c']);
    expect(ec2.sequence().filter((op) => op === 'DescribeInstances')).toHaveLength(1);
    const devices = [0, 1, 2].map((n) => ec2.input('AttachVolume', n));
    expect(devices.map((input) => input.VolumeId).sort()).toEqual([...ids].sort());
    expect(new Set(devices.map((input) => input.Device)).size).toBe(3);
  });

  test('already attached here and mounted: nothing but one lookup', async () => {
    const id = ec2.addVolume('data', ZONE);
    ec2.attachNow(id, ME, '/dev/xvdbd');
    host.mounted.push({ mountId: 1, target: '/mnt/stowage/data', source: `/dev/nvme-${id}`, fstype: 'ext4', root: '/', options: 'rw' });
    await driver.mount('data', ctx('data'));
    expect(ec2.sequence()).toEqual(['DescribeVolumes']);
    expect(host.calls).toEqual([`findDevice ${id} /dev/xvdbd`]);
  });

  test('attached here but not mounted (a restart): the filesystem is checked and mounted, never formatted', async () => {
    const id = ec2.addVolume('data', ZONE, {}, [{ Key: 'stowage:mountopts', Value: 'noatime' }]);
    ec2.volumes.get(id)!.Tags = ec2.volumes.get(id)!.Tags!.filter((t) => t.Key !== 'stowage:mountopts' || t.Value === 'noatime');
    ec2.attachNow(id, ME, '/dev/xvdbd');
    // The mark of this attachment is on record already (written before its first mount).
    const attachTime = ec2.volumes.get(id)!.Attachments![0]!.AttachTime!.toISOString();
    ec2.volumes.get(id)!.Tags!.push({ Key: 'stowage:last-attach', Value: attachTime });
    host.filesystems.set(`/dev/nvme-${id}`, 'ext4');
    await driver.mount('data', ctx('data'));
    expect(ec2.sequence()).toEqual(['DescribeVolumes']);
    expect(host.calls).toEqual([
      `findDevice ${id} /dev/xvdbd`,
      `probe /dev/nvme-${id}`,
      `fsck /dev/nvme-${id} ext4`,
      `mount /dev/nvme-${id} /mnt/stowage/data ext4 noatime`,
    ]);
  });

  test('device names skip the mappings of the instance and names EC2 refuses', async () => {
    const other = ec2.addVolume('other', ZONE);
    ec2.attachNow(other, ME, '/dev/sdba');
    ec2.refusedDevices.add('/dev/xvdbb');
    const id = ec2.addVolume('data', ZONE);
    await driver.mount('data', ctx('data'));
    expect(ec2.sequence()).toEqual(['DescribeVolumes', 'DescribeInstances', 'AttachVolume', 'DescribeInstances', 'AttachVolume', 'DescribeVolumes', 'CreateTags']);
    expect(ec2.input('AttachVolume', 0).Device).toBe('/dev/xvdbb');
    expect(ec2.input('AttachVolume', 1).Device).toBe('/dev/xvdbc');
    expect(ec2.volumes.get(id)!.Attachments![0]!.Device).toBe('/dev/xvdbc');
  });

  test('an attachment stuck in attaching is force-detached and retried on a new name', async () => {
    const id = ec2.addVolume('data', ZONE);
    ec2.stuckDevices.add('/dev/xvdba');
    await driver.mount('data', ctx('data'));
    const seq = ec2.sequence();
    expect(seq.filter((op) => op !== 'DescribeVolumes')).toEqual(['DescribeInstances', 'AttachVolume', 'DetachVolume', 'DescribeInstances', 'AttachVolume', 'CreateTags']);
    expect(ec2.input('DetachVolume')).toEqual({ VolumeId: id, InstanceId: ME, Device: '/dev/xvdba', Force: true });
    expect(ec2.input('AttachVolume', 1).Device).toBe('/dev/xvdbb');
    expect(logLines.some((l) => l.level === 40 && l.volume === 'data' && /stuck/.test(String(l.msg)))).toBe(true);
  });

  test('stuck on every device name it tries: a retryable error that says each was undone and what to do, and no attachment left', async () => {
    const id = ec2.addVolume('data', ZONE);
    for (const a of 'bc') for (const b of 'abcdefghijklmnopqrstuvwxyz') ec2.stuckDevices.add(`/dev/xvd${a}${b}`);
    const err = (await driver.mount('data', ctx('data', 8000)).catch((e: unknown) => e)) as StowageError;
    expect(err).toBeInstanceOf(StowageError);
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/stuck in attaching on 3 device names, each undone; .*stop the instance/);
    expect(ec2.sequence().filter((op) => op === 'AttachVolume')).toHaveLength(3);
    expect(ec2.volumes.get(id)!.Attachments ?? []).toEqual([]);
  });

  test('past the deadline: a retryable PendingError naming what is pending; the next Mount joins the same work', async () => {
    const id = ec2.addVolume('data', ZONE);
    ec2.stuckDevices.add('/dev/xvdba');
    driver = makeDriver({ stuckAttachMs: 60_000 });
    const err = (await driver.mount('data', ctx('data', 100)).catch((e: unknown) => e)) as PendingError;
    expect(err).toBeInstanceOf(PendingError);
    expect(err.retryable).toBe(true);
    expect(err.message).toBe(`mount not finished yet: still attaching ${id} to ${ME} as /dev/xvdba; the work goes on, mount again to join it`);
    ec2.stuckDevices.clear();
    await expect(driver.mount('data', ctx('data'))).resolves.toBe('/mnt/stowage/data');
    expect(ec2.sequence().filter((op) => op === 'AttachVolume')).toHaveLength(1);
  });

  test('attached to a live instance with a fresh heartbeat: waits, then refuses naming holder and zone; never detaches', async () => {
    ec2.addInstance(OTHER, ZONE, 'running', heartbeat(1000));
    const id = ec2.addVolume('data', ZONE);
    ec2.attachNow(id, OTHER, '/dev/xvdba');
    const started = Date.now();
    const err = (await driver.mount('data', ctx('data', 300)).catch((e: unknown) => e)) as VolumeBusyError;
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(err).toBeInstanceOf(VolumeBusyError);
    expect(err.message).toMatch(new RegExp(`^volume is attached to instance ${OTHER} in ${ZONE}, which still holds it \\(instance ${OTHER} is running and its Stowage heartbeat (is being watched|has not changed for \\d+ s)`));
    expect(err.context).toMatchObject({ instance: OTHER, zone: ZONE, volumeId: id });
    expect(ec2.sequence()).not.toContain('DetachVolume');
    expect(ec2.sequence()).not.toContain('AttachVolume');
  });

  test('attached elsewhere: the holder lets go within the deadline, then the Mount proceeds', async () => {
    ec2.addInstance(OTHER, ZONE, 'running', heartbeat(1000));
    const id = ec2.addVolume('data', ZONE);
    ec2.attachNow(id, OTHER, '/dev/xvdba');
    setTimeout(() => (ec2.volumes.get(id)!.Attachments![0]!.State = 'detaching'), 100);
    await expect(driver.mount('data', ctx('data'))).resolves.toBe('/mnt/stowage/data');
    expect(ec2.sequence()).not.toContain('DetachVolume');
    expect(ec2.volumes.get(id)!.Attachments![0]!.InstanceId).toBe(ME);
  });

  test('fencing: a holder whose heartbeat stops changing is force-detached once it stayed the same for STOWAGE_FENCE_AFTER on our clock, loudly', async () => {
    ec2.addInstance(OTHER, ZONE, 'running', heartbeat(120_000));
    const id = ec2.addVolume('data', ZONE);
    ec2.attachNow(id, OTHER, '/dev/xvdba');
    driver = makeDriver({ fenceAfterMs: 200 });
    await driver.mount('data', ctx('data'));
    expect(ec2.input('DetachVolume')).toEqual({ VolumeId: id, InstanceId: OTHER, Force: true });
    const warning = logLines.find((l) => l.level === 40 && /FORCE-DETACHING/.test(String(l.msg)));
    expect(warning).toMatchObject({ volume: 'data', volumeId: id, holder: OTHER, reason: expect.stringMatching(/has not changed for \d+ s on this node's clock \(fence after 0.2 s\)/) });
  });

  test.each([
    ['stopped', 'stopped', heartbeat(1000), /instance i-0+bb is stopped/],
  ])('fencing: a holder %s is force-detached at once, loudly', async (_label, state, tags, reason) => {
    ec2.addInstance(OTHER, ZONE, state, tags);
    const id = ec2.addVolume('data', ZONE);
    ec2.attachNow(id, OTHER, '/dev/xvdba');
    await driver.mount('data', ctx('data'));
    // The look at the holder is on a fresh view first (CreateTags of a read barrier, DescribeVolumes).
    expect(ec2.sequence()).toEqual([
      'DescribeVolumes', 'CreateTags', 'DescribeVolumes', 'DescribeInstances', 'DetachVolume', 'DescribeVolumes',
      'DescribeInstances', 'AttachVolume', 'DescribeVolumes', 'CreateTags',
    ]);
    expect(ec2.input('DetachVolume')).toEqual({ VolumeId: id, InstanceId: OTHER, Force: true });
    const warning = logLines.find((l) => l.level === 40 && /FORCE-DETACHING/.test(String(l.msg)));
    expect(warning).toMatchObject({ volume: 'data', volumeId: id, holder: OTHER, reason: expect.stringMatching(reason) });
  });

  test('a running holder without any heartbeat is never fenced', async () => {
    ec2.addInstance(OTHER, ZONE, 'running');
    const id = ec2.addVolume('data', ZONE);
    ec2.attachNow(id, OTHER, '/dev/xvdba');
    const err = await driver.mount('data', ctx('data', 150)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VolumeBusyError);
    expect((err as Error).message).toMatch(/keeps no Stowage heartbeat/);
    expect(ec2.sequence()).not.toContain('DetachVolume');
  });

  test('a device whose serial is another volume is neither formatted nor mounted', async () => {
    const id = ec2.addVolume('data', ZONE);
    ec2.onAttached = (volumeId) => {
      host.devices.set(volumeId, '/dev/nvme1n1');
      host.serials.set('/dev/nvme1n1', 'vol0fffffffffffffff0');
    };
    const err = await driver.mount('data', ctx('data')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataSafetyError);
    expect((err as Error).message).toBe(`device /dev/nvme1n1 has serial vol0fffffffffffffff0, not volume ${id}; refusing to format or mount it`);
    expect(host.calls.filter((c) => /^(mkfs|mount|probe)/.test(c))).toEqual([]);
  });

  test('a matching serial passes; a device with a foreign signature is refused, not formatted', async () => {
    const id = ec2.addVolume('data', ZONE);
    ec2.onAttached = (volumeId) => {
      host.devices.set(volumeId, '/dev/nvme1n1');
      host.serials.set('/dev/nvme1n1', volumeId.replace('-', ''));
      host.foreign.set('/dev/nvme1n1', 'PTTYPE="gpt"');
    };
    const err = await driver.mount('data', ctx('data')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataSafetyError);
    expect((err as Error).message).toMatch(`device /dev/nvme1n1 of volume ${id} holds PTTYPE="gpt"`);
    expect(host.calls.filter((c) => /^mkfs/.test(c))).toEqual([]);
  });

  test('an AttachVolume that went through before a 5xx: the retry finds the volume ours and carries on', async () => {
    const id = ec2.addVolume('data', ZONE);
    let sent = 0;
    ec2.mock.on(AttachVolumeCommand).callsFake((input: { VolumeId: string; Device: string }) => {
      if (sent++ > 0) throw ec2Error('VolumeInUse');
      ec2.attachNow(input.VolumeId, ME, input.Device, 'attaching');
      throw ec2Error('InternalError', 500);
    });
    await expect(driver.mount('data', ctx('data'))).resolves.toBe('/mnt/stowage/data');
    // The device showed up (by volume id) before a DescribeVolumes said so: one look-up fewer.
    expect(ec2.sequence()).toEqual(['DescribeVolumes', 'DescribeInstances', 'AttachVolume', 'AttachVolume', 'DescribeVolumes', 'CreateTags']);
    expect(ec2.volumes.get(id)!.Attachments![0]).toMatchObject({ InstanceId: ME, Device: '/dev/xvdba', State: 'attached' });
  });

  test('VolumeInUse because another instance won the race: busy', async () => {
    const id = ec2.addVolume('data', ZONE);
    ec2.addInstance(OTHER, ZONE, 'running', heartbeat(0));
    ec2.mock.on(AttachVolumeCommand).callsFake(() => {
      ec2.attachNow(id, OTHER, '/dev/xvdbz');
      throw ec2Error('VolumeInUse');
    });
    const err = await driver.mount('data', ctx('data')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VolumeBusyError);
    expect((err as Error).message).toBe('volume data was attached to another instance meanwhile');
  });

  test('an unknown volume is VolumeNotFoundError', async () => {
    await expect(driver.mount('nope', ctx('nope'))).rejects.toBeInstanceOf(VolumeNotFoundError);
  });

  test('AWS errors surface as CloudError with code and request id', async () => {
    ec2.addVolume('data', ZONE);
    ec2.mock.on(AttachVolumeCommand).rejects(ec2Error('UnauthorizedOperation', 403, 'not authorized', 'req-9'));
    const err = (await driver.mount('data', ctx('data')).catch((e: unknown) => e)) as CloudError;
    expect(err).toBeInstanceOf(CloudError);
    expect(err.code).toBe('UnauthorizedOperation');
    expect(err.context).toMatchObject({ requestId: 'req-9', instance: ME, device: '/dev/xvdba' });
  });
});

describe('unmount', () => {
  test('umount, then DetachVolume, then wait for the detach; the name is not reused soon', async () => {
    const id = ec2.addVolume('data', ZONE);
    await driver.mount('data', ctx('data'));
    ec2.resetCalls();
    await driver.unmount('data', ctx('data'));
    expect(host.calls.slice(-3)).toEqual(['unmount /mnt/stowage/data', `findDevice ${id} /dev/xvdba`, `deviceHeldBy /dev/nvme-${id}`]);
    // "Detached" is confirmed on a fresh view (a read barrier): a lagging Describe may show the volume before its attach.
    expect(ec2.sequence()).toEqual(['DescribeVolumes', 'DetachVolume', 'DescribeVolumes', 'CreateTags', 'DescribeVolumes']);
    expect(ec2.input('DetachVolume')).toEqual({ VolumeId: id, InstanceId: ME });
    expect(ec2.volumes.get(id)!.Attachments).toEqual([]);

    await driver.mount('data', ctx('data'));
    expect(ec2.volumes.get(id)!.Attachments![0]!.Device).toBe('/dev/xvdbb');
    expect(host.calls.filter((c) => c.startsWith('mkfs'))).toHaveLength(1);
  });

  test('a busy umount is a HostError naming the holder, and nothing is detached', async () => {
    ec2.addVolume('data', ZONE);
    await driver.mount('data', ctx('data'));
    ec2.resetCalls();
    host.busy.add('/mnt/stowage/data');
    const err = await driver.unmount('data', ctx('data')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostError);
    expect((err as Error).message).toMatch(/busy \(held by pid 42 postgres\)/);
    expect(ec2.sequence()).toEqual([]);
  });

  test('the device still mounted elsewhere on the node: our mountpoint is released, the detach is refused and left to the background', async () => {
    const id = ec2.addVolume('data', ZONE);
    await driver.mount('data', ctx('data'));
    host.mounted.push({ mountId: 9, target: '/srv/by-hand', source: `/dev/nvme-${id}`, fstype: 'ext4', root: '/', options: 'rw' });
    ec2.resetCalls();
    await driver.unmount('data', ctx('data'));
    const refused = logLines.find((l) => l.level === 40 && l.volume === 'data' && /background/.test(String(l.msg)));
    expect(String((refused?.err as { message?: string })?.message)).toMatch(/still mounted at \/srv\/by-hand; not detaching/);
    expect(ec2.sequence()).not.toContain('DetachVolume');
  });
});

describe('remove', () => {
  test('a detached volume: DeleteVolume', async () => {
    const id = ec2.addVolume('data', ZONE);
    await driver.remove('data', ctx('data'));
    // Its moving snapshots are listed twice: a lagging Describe may not show one just taken.
    expect(ec2.sequence()).toEqual(['DescribeVolumes', 'DeleteVolume', 'DescribeSnapshots', 'DescribeSnapshots']);
    expect(ec2.input('DeleteVolume')).toEqual({ VolumeId: id });
  });

  test('attached anywhere: refused naming the instance, nothing deleted', async () => {
    const id = ec2.addVolume('data', ZONE);
    ec2.attachNow(id, OTHER, '/dev/xvdba');
    const err = await driver.remove('data', ctx('data')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VolumeBusyError);
    expect((err as Error).message).toBe(`volume data is attached to instance ${OTHER} (attached); unmount it there first`);
    // Refused on a fresh view (a read barrier), not on a Describe that may lag.
    expect(ec2.sequence()).toEqual(['DescribeVolumes', 'CreateTags', 'DescribeVolumes']);
  });

  test('mounted here: refused', async () => {
    ec2.addVolume('data', ZONE);
    await driver.mount('data', ctx('data'));
    await expect(driver.remove('data', ctx('data'))).rejects.toBeInstanceOf(VolumeBusyError);
    expect(ec2.sequence()).not.toContain('DeleteVolume');
  });

  test('an unknown name: VolumeNotFoundError', async () => {
    await expect(driver.remove('nope', ctx('nope'))).rejects.toBeInstanceOf(VolumeNotFoundError);
  });
});

describe('heartbeat', () => {
  test('one CreateTags on our own instance per beat, whatever the number of volumes', async () => {
    ec2.addVolume('a', ZONE);
    ec2.addVolume('b', ZONE);
    driver = makeDriver({ heartbeatIntervalMs: 50 });
    driver.start();
    await new Promise((r) => setTimeout(r, 120));
    driver.stop();
    const beats = ec2.sequence().filter((op) => op === 'CreateTags');
    expect(beats.length).toBeGreaterThanOrEqual(2);
    expect(beats.length).toBeLessThanOrEqual(4);
    expect(ec2.sequence().every((op) => op === 'CreateTags')).toBe(true);
    expect(ec2.input('CreateTags')).toEqual({ Resources: [ME], Tags: [{ Key: 'stowage:heartbeat', Value: expect.stringMatching(/^\d{13}$/) }] });
  });
});
