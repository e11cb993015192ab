import type { Cloud } from '../cloud.js';
import { ACCOUNT_ID, VPC_ID, newId, writeAtomic, type MountTarget } from '../state.js';
import { available, badRequest, due, efsError, fileSystem, notFound, paged, resourceId, str, type EfsRequest, type EfsResponse } from './common.js';

/**
 * `DIR/efs/mount-targets.json` maps each mount target's IP address to its file system's folder, for
 * a host layer that mounts by bind mount.
 */

function describeMt(cloud: Cloud, mt: MountTarget) {
  const subnet = cloud.state.subnets.find((s) => s.id === mt.subnetId);
  return {
    OwnerId: ACCOUNT_ID,
    MountTargetId: mt.id,
    FileSystemId: mt.fileSystemId,
    SubnetId: mt.subnetId,
    LifeCycleState: mt.state,
    IpAddress: mt.ip,
    NetworkInterfaceId: `eni-${mt.id.slice('fsmt-'.length)}`,
    AvailabilityZoneId: subnet?.zoneId,
    AvailabilityZoneName: mt.zone,
    VpcId: VPC_ID,
  };
}

/** Mount targets take addresses in the first /24 of their subnet. */
function nextIp(cloud: Cloud, cidr: string): string {
  const [a, b, c] = cidr.split('.');
  const used = new Set(cloud.state.mountTargets.map((m) => m.ip));
  for (let host = 10; host < 255; host++) {
    const ip = `${a}.${b}.${c}.${host}`;
    if (!used.has(ip)) return ip;
  }
  throw efsError('NoFreeAddressesInSubnet', 409, 'The subnet has no free addresses.');
}

/** IP address → mount target, file system and folder: the content of mount-targets.json. */
export function mountTargetsByIp(cloud: Cloud): Record<string, { mountTargetId: string; fileSystemId: string; availabilityZone: string; path: string }> {
  return Object.fromEntries(
    cloud.state.mountTargets.map((m) => [
      m.ip,
      { mountTargetId: m.id, fileSystemId: m.fileSystemId, availabilityZone: m.zone, path: cloud.paths.fileSystemDir(m.fileSystemId) },
    ]),
  );
}

async function writeMountTargets(cloud: Cloud): Promise<void> {
  await writeAtomic(cloud.paths.mountTargetsFile, JSON.stringify(mountTargetsByIp(cloud), null, 2));
}

export async function createMountTarget(cloud: Cloud, { body }: EfsRequest): Promise<EfsResponse> {
  const fsId = str(body, 'FileSystemId');
  const subnetId = str(body, 'SubnetId');
  if (!fsId || !subnetId) throw badRequest('FileSystemId and SubnetId are required');
  available(fileSystem(cloud, fsId));
  const subnet = cloud.state.subnets.find((s) => s.id === subnetId);
  if (!subnet) throw efsError('SubnetNotFound', 400, `Subnet '${subnetId}' does not exist.`);
  if (cloud.state.mountTargets.some((m) => m.fileSystemId === fsId && m.zone === subnet.zone))
    throw efsError('MountTargetConflict', 409, `File system '${fsId}' already has a mount target in availability zone '${subnet.zone}'.`);
  const ip = str(body, 'IpAddress') ?? nextIp(cloud, subnet.cidr);
  if (cloud.state.mountTargets.some((m) => m.ip === ip)) throw efsError('IpAddressInUse', 409, `IP address ${ip} is already in use.`);
  const mt: MountTarget = { id: newId('fsmt'), fileSystemId: fsId, subnetId, zone: subnet.zone, ip, state: 'creating', due: due(cloud) };
  cloud.state.mountTargets.push(mt);
  await writeMountTargets(cloud);
  return { status: 200, body: describeMt(cloud, mt) };
}

export async function describeMountTargets(cloud: Cloud, { query: q }: EfsRequest): Promise<EfsResponse> {
  const fsId = q.get('FileSystemId');
  const mtId = q.get('MountTargetId');
  const apId = q.get('AccessPointId');
  let matching: MountTarget[];
  if (mtId) {
    matching = cloud.state.mountTargets.filter((m) => m.id === mtId);
    if (!matching.length) throw notFound.mt(mtId);
  } else if (fsId) {
    fileSystem(cloud, fsId);
    matching = cloud.state.mountTargets.filter((m) => m.fileSystemId === fsId);
  } else if (apId) {
    const ap = cloud.state.accessPoints.find((a) => a.id === apId);
    if (!ap) throw notFound.ap(apId);
    matching = cloud.state.mountTargets.filter((m) => m.fileSystemId === ap.fileSystemId);
  } else throw badRequest('One of FileSystemId, MountTargetId or AccessPointId is required');
  const { items, next } = paged(matching, q.get('MaxItems'), q.get('Marker'));
  return { status: 200, body: { MountTargets: items.map((m) => describeMt(cloud, m)), Marker: q.get('Marker') ?? undefined, NextMarker: next } };
}

export async function deleteMountTarget(cloud: Cloud, req: EfsRequest): Promise<EfsResponse> {
  const id = resourceId(req);
  if (!cloud.state.mountTargets.some((m) => m.id === id)) throw notFound.mt(id);
  cloud.state.mountTargets = cloud.state.mountTargets.filter((m) => m.id !== id);
  await writeMountTargets(cloud);
  return { status: 204 };
}
