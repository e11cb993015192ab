import { open, rm } from 'node:fs/promises';
import { isoNow, type Cloud } from '../cloud.js';
import { ApiError } from '../errors.js';
import { sparseCopy } from '../loop.js';
import type { Params } from '../query.js';
import { newId, type Volume, type VolumeConfig } from '../state.js';
import type { XmlValue } from '../xml.js';
import { applyFilters, byIds, page, type FilterFields } from './filters.js';
import { attachmentXml, ROOT_DEVICE, volumeStatus, volumeXml } from './shapes.js';
import { specifiedTags } from './tags.js';

const GiB = 1024 ** 3;

export interface TypeLimits {
  size: [number, number];
  iops?: [number, number];
  iopsRequired?: boolean;
  throughput?: [number, number];
}

/** Limits of each EBS volume type, from the EBS user guide. */
export const TYPES: Record<string, TypeLimits> = {
  gp3: { size: [1, 16384], iops: [3000, 16000], throughput: [125, 1000] },
  gp2: { size: [1, 16384] },
  io1: { size: [4, 16384], iops: [100, 64000], iopsRequired: true },
  io2: { size: [4, 65536], iops: [100, 256000], iopsRequired: true },
  st1: { size: [125, 16384] },
  sc1: { size: [125, 16384] },
  standard: { size: [1, 1024] },
};

function range(name: string, v: number, [lo, hi]: [number, number]): void {
  if (v < lo || v > hi) throw new ApiError('InvalidParameterValue', `Value (${v}) for parameter ${name} is invalid. Expected a value between ${lo} and ${hi}.`);
}

/** Checks a volume configuration as EC2 does and fills in the type's defaults. */
export function volumeConfig(size: number, type: string, iops: number | undefined, throughput: number | undefined): VolumeConfig {
  const limits = TYPES[type];
  if (!limits) throw new ApiError('InvalidParameterValue', `Value (${type}) for parameter volumeType is invalid. Valid types: ${Object.keys(TYPES).join(', ')}.`);
  if (size < limits.size[0]) throw new ApiError('InvalidParameterValue', `Volume of ${size}GiB is too small; minimum is ${limits.size[0]}GiB.`);
  if (size > limits.size[1]) throw new ApiError('InvalidParameterValue', `Volume of ${size}GiB is too large; maximum is ${limits.size[1]}GiB.`);
  if (iops !== undefined && !limits.iops)
    throw new ApiError('InvalidParameterCombination', `The parameter iops is not supported for ${type} volumes.`);
  if (throughput !== undefined && !limits.throughput)
    throw new ApiError('InvalidParameterCombination', `The parameter throughput is not supported for ${type} volumes.`);
  if (iops === undefined && limits.iopsRequired) throw new ApiError('MissingParameter', `The parameter iops must be specified for ${type} volumes.`);
  if (iops !== undefined) range('iops', iops, limits.iops!);
  if (throughput !== undefined) range('throughput', throughput, limits.throughput!);
  if (type === 'gp3') return { size, type, iops: iops ?? 3000, throughput: throughput ?? 125 };
  if (type === 'gp2') return { size, type, iops: Math.min(16000, Math.max(100, 3 * size)) };
  return { size, type, iops };
}

export async function sizeFile(file: string, gib: number): Promise<void> {
  const fh = await open(file, 'a', 0o600);
  try {
    await fh.truncate(gib * GiB);
  } finally {
    await fh.close();
  }
}

export async function createVolume(cloud: Cloud, p: Params): Promise<Record<string, XmlValue>> {
  const zone = p.required('AvailabilityZone');
  cloud.checkZone(zone);
  const snapshotId = p.str('SnapshotId');
  const snap = snapshotId ? cloud.snapshot(snapshotId) : undefined;
  if (snap && snap.state !== 'completed') throw new ApiError('IncorrectState', `Snapshot '${snap.id}' is in state '${snap.state}'.`);
  const size = p.int('Size') ?? snap?.volumeSize;
  if (size === undefined) throw new ApiError('MissingParameter', 'The request must contain the parameter size or snapshotId');
  if (snap && size < snap.volumeSize)
    throw new ApiError('InvalidParameterValue', `Volume of ${size}GiB is too small; minimum is ${snap.volumeSize}GiB.`);
  const config = volumeConfig(size, p.str('VolumeType') ?? 'gp2', p.int('Iops'), p.int('Throughput'));
  const encrypted = p.bool('Encrypted') ?? snap?.encrypted ?? false;
  const kmsKeyId = p.str('KmsKeyId') ?? (encrypted ? snap?.kmsKeyId : undefined);
  if (p.str('KmsKeyId') && !encrypted)
    throw new ApiError('InvalidParameterDependency', 'The parameter KmsKeyId requires the parameter Encrypted to be set.');
  const tags = specifiedTags(p, 'volume');
  const initRate = p.int('VolumeInitializationRate');
  // EC2 initializes only what a snapshot holds: a blank volume has nothing to load.
  if (initRate !== undefined && !snap)
    throw new ApiError('InvalidParameterCombination', 'The parameter VolumeInitializationRate is supported only for volumes created from a snapshot.');
  if (initRate !== undefined) range('volumeInitializationRate', initRate, [100, 300]);

  const clientToken = p.str('ClientToken');
  const fingerprint = JSON.stringify({ zone, snapshotId, size: p.int('Size'), config, encrypted, kmsKeyId, initRate, tags });
  // EC2 remembers a token after its volume is gone: a retry with the same parameters answers the
  // original volume ("the result might contain updated information, such as the current creation
  // status"), other parameters fail with IdempotentParameterMismatch. A token lives at least 24 hours
  // after its resource is gone, with no documented end, so none is ever forgotten here
  // (https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html).
  const earlier = clientToken ? cloud.state.clientTokens.find((t) => t.token === clientToken) : undefined;
  if (earlier) {
    if (earlier.fingerprint !== fingerprint)
      throw new ApiError('IdempotentParameterMismatch', `The client token '${clientToken}' was already used with different parameters.`);
    const current = cloud.state.volumes.find((v) => v.id === earlier.volume.id);
    return current ? volumeXml(cloud, current) : { ...volumeXml(cloud, earlier.volume), status: 'deleted' };
  }

  const id = newId('vol');
  const image = cloud.paths.volumeImage(id);
  if (snap) await sparseCopy(cloud.paths.snapshotImage(snap.id), image);
  await sizeFile(image, size);
  const volume: Volume = {
    id,
    zone,
    ...config,
    encrypted,
    kmsKeyId: encrypted ? (kmsKeyId ?? 'alias/aws/ebs') : undefined,
    snapshotId,
    state: 'creating',
    due: Date.now() + cloud.latency.createVolume(),
    createTime: isoNow(),
    tags,
    ...(snap && { initialization: { ...(initRate !== undefined && { rate: initRate }), start: Date.now(), due: Date.now() + cloud.latency.initializeVolume(snap.volumeSize * GiB, initRate) } }),
  };
  cloud.state.volumes.push(volume);
  if (clientToken) cloud.state.clientTokens.push({ token: clientToken, fingerprint, volume: structuredClone(volume) });
  return volumeXml(cloud, volume);
}

const VOLUME_FILTERS: FilterFields<Volume> = {
  'volume-id': (v) => [v.id],
  'availability-zone': (v) => [v.zone],
  status: (v) => [volumeStatus(v)],
  'attachment.instance-id': (v) => [v.attachment?.instanceId],
  'attachment.status': (v) => [v.attachment?.state],
  'attachment.device': (v) => [v.attachment?.device],
  'snapshot-id': (v) => [v.snapshotId ?? ''],
  size: (v) => [v.size],
  'volume-type': (v) => [v.type],
  encrypted: (v) => [v.encrypted],
  'create-time': (v) => [v.createTime],
};

export async function describeVolumes(cloud: Cloud, p: Params): Promise<Record<string, XmlValue>> {
  const ids = p.strings('VolumeId');
  const { volumes } = cloud.consistency.view();
  const all = ids.length
    ? byIds(volumes, ids, (missing) => new ApiError('InvalidVolume.NotFound', `The volume '${missing.join(', ')}' does not exist.`))
    : volumes;
  const { items, nextToken } = page(applyFilters(all, p, VOLUME_FILTERS), p, { max: 500, idsGiven: ids.length > 0, idSetName: 'volumeIdSet' });
  return { volumeSet: items.map((v) => volumeXml(cloud, v)), nextToken };
}

const DEVICE_NAME = /^\/dev\/(sd|xvd)[a-z]{1,2}\d{0,2}$/;

export async function attachVolume(cloud: Cloud, p: Params): Promise<Record<string, XmlValue>> {
  const device = p.required('Device');
  const volume = cloud.volume(p.required('VolumeId'));
  const instance = cloud.instance(p.required('InstanceId'));
  if (!DEVICE_NAME.test(device))
    throw new ApiError('InvalidParameterValue', `Value (${device}) for parameter device is invalid. ${device} is not a valid EBS device name.`);
  if (instance.state !== 'running' && instance.state !== 'stopped')
    throw new ApiError('IncorrectInstanceState', `The instance '${instance.id}' is not in the 'running' or 'stopped' states.`);
  if (volume.attachment) throw new ApiError('VolumeInUse', `${volume.id} is already attached to an instance`);
  if (volume.state !== 'available') throw new ApiError('IncorrectState', `${volume.id} is not 'available'.`);
  if (volume.zone !== instance.zone)
    throw new ApiError(
      'InvalidVolume.ZoneMismatch',
      `The volume '${volume.id}' is not in the same availability zone as instance '${instance.id}'`,
    );
  const taken = device === ROOT_DEVICE || cloud.state.volumes.some((v) => v.attachment?.instanceId === instance.id && v.attachment.device === device);
  if (taken) throw new ApiError('InvalidParameterValue', `Invalid value '${device}' for unixDevice. Attachment point ${device} is already in use`);
  volume.attachment = {
    instanceId: instance.id,
    device,
    state: 'attaching',
    attachTime: isoNow(),
    due: Date.now() + cloud.latency.attach(),
    stuck: cloud.faults.takeStuckAttach(),
    force: false,
  };
  return attachmentXml(volume);
}

export async function detachVolume(cloud: Cloud, p: Params): Promise<Record<string, XmlValue>> {
  const volume = cloud.volume(p.required('VolumeId'));
  const a = volume.attachment;
  if (!a) throw new ApiError('IncorrectState', `Volume '${volume.id}' is in the '${volumeStatus(volume)}' state.`);
  const instanceId = p.str('InstanceId');
  const device = p.str('Device');
  if ((instanceId && instanceId !== a.instanceId) || (device && device !== a.device))
    throw new ApiError('InvalidAttachment.NotFound', `Volume '${volume.id}' is not attached to '${instanceId ?? device}'.`);
  const force = p.bool('Force') ?? false;
  a.force ||= force;
  if (a.state !== 'detaching') {
    a.state = 'detaching';
    // an attachment that never reached the instance is undone at once
    a.due = a.loop ? Date.now() + cloud.latency.detach() : Date.now();
  }
  return attachmentXml(volume);
}

export async function deleteVolume(cloud: Cloud, p: Params): Promise<Record<string, XmlValue>> {
  const volume = cloud.volume(p.required('VolumeId'));
  if (volume.attachment) throw new ApiError('VolumeInUse', `Volume ${volume.id} is currently attached to ${volume.attachment.instanceId}`);
  if (volume.state === 'creating') throw new ApiError('IncorrectState', `The volume '${volume.id}' is in the 'creating' state.`);
  if (volume.state !== 'deleting') {
    volume.state = 'deleting';
    volume.due = Date.now() + cloud.latency.deleteVolume();
  }
  return { return: true };
}

/** Removes a deleted volume's data; the state entry goes with it. */
export async function eraseVolume(cloud: Cloud, volume: Volume): Promise<void> {
  await rm(cloud.paths.volumeImage(volume.id), { force: true });
  cloud.state.volumes = cloud.state.volumes.filter((v) => v !== volume);
}
