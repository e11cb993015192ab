import { mkdir } from 'node:fs/promises';
import { isoNow, type Cloud } from '../cloud.js';
import { ApiError } from '../errors.js';
import type { Params } from '../query.js';
import { ACCOUNT_ID, VPC_ID, newId, type Instance, type InstanceState, type Subnet } from '../state.js';
import type { XmlValue } from '../xml.js';
import { applyFilters, byIds, page, type FilterFields } from './filters.js';
import { instanceStateXml, instanceXml } from './shapes.js';
import { specifiedTags, tagSet } from './tags.js';

function subnetOf(cloud: Cloud, zone: string): Subnet {
  return cloud.state.subnets.find((s) => s.zone === zone)!;
}

/** Instances take addresses from the second /24 of their zone's subnet; the first is for mount targets. */
function nextPrivateIp(cloud: Cloud, subnet: Subnet): string {
  const [a, b, c] = subnet.cidr.split('.');
  const used = new Set(cloud.state.instances.map((i) => i.privateIp));
  for (let host = 10; host < 255; host++) {
    const ip = `${a}.${b}.${Number(c) + 1}.${host}`;
    if (!used.has(ip)) return ip;
  }
  throw new ApiError('InsufficientFreeAddressesInSubnet', `Subnet ${subnet.id} has no free addresses.`);
}

export async function runInstances(cloud: Cloud, p: Params): Promise<Record<string, XmlValue>> {
  const minCount = p.int('MinCount');
  const maxCount = p.int('MaxCount');
  if (minCount === undefined) throw new ApiError('MissingParameter', 'The request must contain the parameter MinCount');
  if (maxCount === undefined) throw new ApiError('MissingParameter', 'The request must contain the parameter MaxCount');
  if (minCount < 1 || maxCount < minCount) throw new ApiError('InvalidParameterValue', `Invalid value for MinCount/MaxCount: ${minCount}/${maxCount}`);
  const subnetId = p.str('SubnetId');
  let zone = p.child('Placement').str('AvailabilityZone');
  if (subnetId) {
    const subnet = cloud.state.subnets.find((s) => s.id === subnetId);
    if (!subnet) throw new ApiError('InvalidSubnetID.NotFound', `The subnet ID '${subnetId}' does not exist`);
    if (zone && zone !== subnet.zone) throw new ApiError('InvalidParameterValue', `Subnet ${subnetId} is not in availability zone ${zone}`);
    zone = subnet.zone;
  }
  zone ??= cloud.zones[0]!;
  cloud.checkZone(zone);
  const tags = specifiedTags(p, 'instance', ['volume', 'network-interface']);
  const subnet = subnetOf(cloud, zone);
  const reservationId = newId('r');
  const launched: Instance[] = [];
  for (let n = 0; n < maxCount; n++) {
    const instance: Instance = {
      id: newId('i'),
      reservationId,
      zone,
      subnetId: subnet.id,
      privateIp: nextPrivateIp(cloud, subnet),
      imageId: p.str('ImageId') ?? 'ami-00000000000000001',
      instanceType: p.str('InstanceType') ?? 't3.micro',
      state: 'pending',
      due: Date.now() + cloud.latency.instanceStart(),
      launchTime: isoNow(),
      tags: { ...tags },
    };
    await mkdir(cloud.paths.deviceDir(instance.id), { recursive: true });
    cloud.state.instances.push(instance);
    launched.push(instance);
  }
  return { reservationId, ownerId: ACCOUNT_ID, groupSet: [], instancesSet: launched.map((i) => instanceXml(i, cloud.state.volumes)) };
}

const INSTANCE_FILTERS: FilterFields<Instance> = {
  'instance-id': (i) => [i.id],
  'availability-zone': (i) => [i.zone],
  'instance-state-name': (i) => [i.state],
  'private-ip-address': (i) => [i.privateIp],
  'subnet-id': (i) => [i.subnetId],
  'reservation-id': (i) => [i.reservationId],
  'instance-type': (i) => [i.instanceType],
};

function instancesByIds(instances: Instance[], ids: string[]): Instance[] {
  return byIds(instances, ids, (missing) => new ApiError('InvalidInstanceID.NotFound', `The instance IDs '${missing.join(', ')}' do not exist`));
}

export async function describeInstances(cloud: Cloud, p: Params): Promise<Record<string, XmlValue>> {
  const ids = p.strings('InstanceId');
  const { instances, volumes } = cloud.consistency.view();
  const all = ids.length ? instancesByIds(instances, ids) : instances;
  const { items, nextToken } = page(applyFilters(all, p, INSTANCE_FILTERS), p, { max: 1000, idsGiven: ids.length > 0, idSetName: 'instanceIdSet' });
  const reservations = new Map<string, Instance[]>();
  for (const i of items) reservations.set(i.reservationId, [...(reservations.get(i.reservationId) ?? []), i]);
  return {
    reservationSet: [...reservations].map(([reservationId, members]) => ({
      reservationId,
      ownerId: ACCOUNT_ID,
      groupSet: [],
      instancesSet: members.map((i) => instanceXml(i, volumes)),
    })),
    nextToken,
  };
}

/** Shared by Stop/Start/Terminate: moves each instance and reports previous and current state. */
async function changeState(
  cloud: Cloud,
  p: Params,
  change: (i: Instance) => { to: InstanceState; due: number } | undefined,
): Promise<Record<string, XmlValue>> {
  const ids = p.strings('InstanceId');
  if (!ids.length) throw new ApiError('MissingParameter', 'The request must contain the parameter InstanceId');
  const moves = instancesByIds(cloud.state.instances, ids).map((i) => ({ i, previous: i.state, next: change(i) }));
  for (const { i, next } of moves) {
    if (!next) continue;
    i.state = next.to;
    i.due = next.due;
  }
  return {
    instancesSet: moves.map(({ i, previous }) => ({
      instanceId: i.id,
      currentState: instanceStateXml(i.state),
      previousState: instanceStateXml(previous),
    })),
  };
}

function refuse(i: Instance, verb: string): never {
  throw new ApiError('IncorrectInstanceState', `This instance '${i.id}' is not in a state from which it can be ${verb}.`);
}

export async function stopInstances(cloud: Cloud, p: Params): Promise<Record<string, XmlValue>> {
  return changeState(cloud, p, (i) => {
    if (i.state === 'stopped' || i.state === 'stopping') return undefined;
    if (i.state !== 'running') refuse(i, 'stopped');
    return { to: 'stopping', due: Date.now() + cloud.latency.instanceStop() };
  });
}

export async function startInstances(cloud: Cloud, p: Params): Promise<Record<string, XmlValue>> {
  return changeState(cloud, p, (i) => {
    if (i.state === 'running' || i.state === 'pending') return undefined;
    if (i.state !== 'stopped') refuse(i, 'started');
    return { to: 'pending', due: Date.now() + cloud.latency.instanceStart() };
  });
}

/** Data volumes survive their instance: they are detached (DeleteOnTermination is false for attached volumes). */
export async function terminateInstances(cloud: Cloud, p: Params): Promise<Record<string, XmlValue>> {
  return changeState(cloud, p, (i) => {
    if (i.state === 'terminated' || i.state === 'shutting-down') return undefined;
    for (const v of cloud.state.volumes) {
      if (v.attachment?.instanceId !== i.id) continue;
      Object.assign(v.attachment, { state: 'detaching', force: true, due: Date.now() });
    }
    return { to: 'shutting-down', due: Date.now() + cloud.latency.instanceStop() };
  });
}

export async function describeAvailabilityZones(cloud: Cloud, p: Params): Promise<Record<string, XmlValue>> {
  const names = p.strings('ZoneName');
  for (const n of names) if (!cloud.zones.includes(n)) throw new ApiError('InvalidParameterValue', `The zone '${n}' does not exist.`);
  const zones = cloud.zones
    .filter((z) => !names.length || names.includes(z))
    .map((z) => ({ id: z, tags: {} }));
  const fields: FilterFields<{ id: string }> = {
    'zone-name': (z) => [z.id],
    'zone-id': (z) => [cloud.zoneId(z.id)],
    'region-name': () => [cloud.region],
    state: () => ['available'],
  };
  return {
    availabilityZoneInfo: applyFilters(zones, p, fields).map((z) => ({
      zoneName: z.id,
      zoneState: 'available',
      regionName: cloud.region,
      zoneId: cloud.zoneId(z.id),
      zoneType: 'availability-zone',
      optInStatus: 'opt-in-not-required',
      groupName: cloud.region,
      networkBorderGroup: cloud.region,
      messageSet: [],
    })),
  };
}

export async function describeSubnets(cloud: Cloud, p: Params): Promise<Record<string, XmlValue>> {
  const ids = p.strings('SubnetId');
  const subnets = cloud.state.subnets.filter((s) => cloud.zones.includes(s.zone)).map((s) => ({ ...s, tags: {} }));
  const all = ids.length
    ? byIds(subnets, ids, (missing) => new ApiError('InvalidSubnetID.NotFound', `The subnet ID '${missing.join(', ')}' does not exist`))
    : subnets;
  const fields: FilterFields<Subnet> = {
    'subnet-id': (s) => [s.id],
    'availability-zone': (s) => [s.zone],
    'availability-zone-id': (s) => [s.zoneId],
    'vpc-id': () => [VPC_ID],
    'default-for-az': () => [true],
    'cidr-block': (s) => [s.cidr],
    state: () => ['available'],
  };
  return {
    subnetSet: applyFilters(all, p, fields).map((s) => ({
      subnetId: s.id,
      subnetArn: `arn:aws:ec2:${cloud.region}:${ACCOUNT_ID}:subnet/${s.id}`,
      state: 'available',
      vpcId: VPC_ID,
      cidrBlock: s.cidr,
      availableIpAddressCount: 4091,
      availabilityZone: s.zone,
      availabilityZoneId: s.zoneId,
      defaultForAz: true,
      mapPublicIpOnLaunch: true,
      ownerId: ACCOUNT_ID,
      tagSet: tagSet(s.tags),
    })),
  };
}
