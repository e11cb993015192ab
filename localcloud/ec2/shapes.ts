import type { Cloud } from '../cloud.js';
import { ACCOUNT_ID, VPC_ID, type Instance, type InstanceState, type Snapshot, type Volume } from '../state.js';
import type { XmlValue } from '../xml.js';
import { tagSet } from './tags.js';

/** Resources as EC2 renders them, element names as in the EC2 API reference. */

export function volumeStatus(v: Volume): string {
  return v.state === 'available' && v.attachment ? 'in-use' : v.state;
}

export function attachmentXml(v: Volume): Record<string, XmlValue> {
  const a = v.attachment!;
  return { volumeId: v.id, instanceId: a.instanceId, device: a.device, status: a.state, attachTime: a.attachTime, deleteOnTermination: false };
}

export function volumeXml(cloud: Cloud, v: Volume): Record<string, XmlValue> {
  return {
    volumeId: v.id,
    size: v.size,
    snapshotId: v.snapshotId ?? '',
    availabilityZone: v.zone,
    availabilityZoneId: cloud.zoneId(v.zone),
    status: volumeStatus(v),
    createTime: v.createTime,
    attachmentSet: v.attachment ? [attachmentXml(v)] : [],
    tagSet: tagSet(v.tags),
    volumeType: v.type,
    iops: v.iops,
    throughput: v.throughput,
    encrypted: v.encrypted,
    kmsKeyId: v.kmsKeyId,
    multiAttachEnabled: false,
    volumeInitializationRate: v.initialization?.rate,
  };
}

export function snapshotProgress(s: Snapshot, now = Date.now()): string {
  if (s.state === 'completed') return '100%';
  const span = s.due - s.start;
  return `${span <= 0 ? 0 : Math.min(99, Math.floor(((now - s.start) / span) * 100))}%`;
}

export function snapshotXml(s: Snapshot): Record<string, XmlValue> {
  return {
    snapshotId: s.id,
    volumeId: s.volumeId,
    status: s.state,
    startTime: s.startTime,
    progress: snapshotProgress(s),
    ownerId: ACCOUNT_ID,
    volumeSize: s.volumeSize,
    description: s.description,
    encrypted: s.encrypted,
    kmsKeyId: s.kmsKeyId,
    tagSet: tagSet(s.tags),
    storageTier: 'standard',
  };
}

const STATE_CODES: Record<InstanceState, number> = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

export function instanceStateXml(state: InstanceState): XmlValue {
  return { code: STATE_CODES[state], name: state };
}

/** volumes: the account's, as the answer sees them */
export function instanceXml(i: Instance, volumes: Volume[]): XmlValue {
  const attached = volumes.filter((v) => v.attachment?.instanceId === i.id);
  return {
    instanceId: i.id,
    imageId: i.imageId,
    instanceState: instanceStateXml(i.state),
    privateDnsName: `ip-${i.privateIp.replaceAll('.', '-')}.ec2.internal`,
    dnsName: '',
    reason: '',
    amiLaunchIndex: 0,
    productCodes: [],
    instanceType: i.instanceType,
    launchTime: i.launchTime,
    placement: { availabilityZone: i.zone, groupName: '', tenancy: 'default' },
    monitoring: { state: 'disabled' },
    subnetId: i.subnetId,
    vpcId: VPC_ID,
    privateIpAddress: i.privateIp,
    sourceDestCheck: true,
    groupSet: [],
    architecture: 'x86_64',
    rootDeviceType: 'ebs',
    rootDeviceName: ROOT_DEVICE,
    blockDeviceMapping: attached.map((v) => ({
      deviceName: v.attachment!.device,
      ebs: { volumeId: v.id, status: v.attachment!.state, attachTime: v.attachment!.attachTime, deleteOnTermination: false },
    })),
    virtualizationType: 'hvm',
    tagSet: tagSet(i.tags),
    hypervisor: 'xen',
    ebsOptimized: false,
  };
}

/** Taken by the (not emulated) root volume of every instance. */
export const ROOT_DEVICE = '/dev/xvda';
