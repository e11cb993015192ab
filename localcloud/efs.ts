import { chmod, chown, mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Cloud } from './cloud.js';
import { ApiError } from './errors.js';
import { ACCOUNT_ID, VPC_ID, newId, writeAtomic, type AccessPoint, type EfsTag, type FileSystem, type MountTarget } from './state.js';

/**
 * The EFS REST-JSON API. A file system is the folder `DIR/efs/<fs-id>/`; an access point's root
 * directory is the same path below it. `DIR/efs/mount-targets.json` maps each mount target's IP
 * address to its file system's folder, for a host layer that mounts by bind mount.
 */

export interface EfsRequest {
  /** path below `/2015-02-01/` */
  path: string;
  query: URLSearchParams;
  body: Record<string, unknown>;
}

export interface EfsResponse {
  status: number;
  body?: unknown;
}

const efsError = (code: string, status: number, message: string, fields: Record<string, string> = {}) =>
  new ApiError(code, message, status, fields);

const notFound = {
  fs: (id: string) => efsError('FileSystemNotFound', 404, `File system '${id}' does not exist.`),
  mt: (id: string) => efsError('MountTargetNotFound', 404, `Mount target '${id}' does not exist.`),
  ap: (id: string) => efsError('AccessPointNotFound', 404, `Access point '${id}' does not exist.`),
};

function badRequest(message: string): ApiError {
  return efsError('BadRequest', 400, message);
}

function str(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw badRequest(`${key} must be a string`);
  return v;
}

function tagsOf(body: Record<string, unknown>): EfsTag[] {
  const tags = body['Tags'] ?? [];
  if (!Array.isArray(tags) || tags.some((t) => typeof t?.Key !== 'string' || typeof t?.Value !== 'string'))
    throw badRequest('Tags must be a list of {Key, Value}');
  return tags.map((t: EfsTag) => ({ Key: t.Key, Value: t.Value }));
}

function mergeTags(into: EfsTag[], tags: EfsTag[]): void {
  for (const t of tags) {
    const existing = into.find((x) => x.Key === t.Key);
    if (existing) existing.Value = t.Value;
    else into.push(t);
  }
}

/** Marker/NextToken paging: the token is the offset of the next page. */
function paged<T>(items: T[], maxText: string | null, token: string | null): { items: T[]; next?: string } {
  const start = token ? Number(Buffer.from(token, 'base64url').toString()) : 0;
  if (!Number.isInteger(start) || start < 0) throw badRequest(`Invalid pagination token '${token}'`);
  const max = maxText ? Number(maxText) : 100;
  if (!Number.isInteger(max) || max < 1) throw badRequest(`Invalid page size '${maxText}'`);
  const end = start + max;
  return { items: items.slice(start, end), next: end < items.length ? Buffer.from(String(end)).toString('base64url') : undefined };
}

export class Efs {
  constructor(private readonly cloud: Cloud) {}

  private get state() {
    return this.cloud.state;
  }

  private fileSystem(id: string): FileSystem {
    const fs = this.state.fileSystems.find((f) => f.id === id);
    if (!fs) throw notFound.fs(id);
    return fs;
  }

  private available(fs: FileSystem): void {
    if (fs.state !== 'available')
      throw efsError('IncorrectFileSystemLifeCycleState', 409, `File system '${fs.id}' is in the '${fs.state}' state.`);
  }

  private due(): number {
    return Date.now() + this.cloud.latency.efsResource();
  }

  private describeFs(fs: FileSystem) {
    return {
      OwnerId: ACCOUNT_ID,
      CreationToken: fs.creationToken,
      FileSystemId: fs.id,
      FileSystemArn: `arn:aws:elasticfilesystem:${this.cloud.region}:${ACCOUNT_ID}:file-system/${fs.id}`,
      CreationTime: fs.creationTime,
      LifeCycleState: fs.state,
      Name: fs.tags.find((t) => t.Key === 'Name')?.Value,
      NumberOfMountTargets: this.state.mountTargets.filter((m) => m.fileSystemId === fs.id).length,
      SizeInBytes: { Value: 6144, ValueInStandard: 6144, ValueInIA: 0 },
      PerformanceMode: fs.performanceMode,
      Encrypted: fs.encrypted,
      KmsKeyId: fs.kmsKeyId,
      ThroughputMode: fs.throughputMode,
      Tags: fs.tags,
      FileSystemProtection: { ReplicationOverwriteProtection: 'ENABLED' },
    };
  }

  private describeMt(mt: MountTarget) {
    const subnet = this.state.subnets.find((s) => s.id === mt.subnetId);
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

  private describeAp(ap: AccessPoint) {
    return {
      ClientToken: ap.clientToken,
      Name: ap.tags.find((t) => t.Key === 'Name')?.Value,
      Tags: ap.tags,
      AccessPointId: ap.id,
      AccessPointArn: `arn:aws:elasticfilesystem:${this.cloud.region}:${ACCOUNT_ID}:access-point/${ap.id}`,
      FileSystemId: ap.fileSystemId,
      PosixUser: ap.posixUser,
      RootDirectory: ap.rootDirectory,
      OwnerId: ACCOUNT_ID,
      LifeCycleState: ap.state,
    };
  }

  /** The operation name of a request, for fault injection; undefined when the route is unknown. */
  static operation(method: string, path: string): string | undefined {
    const [collection, id] = path.split('/');
    const ops: Record<string, Record<string, string>> = {
      'file-systems': { POST: 'CreateFileSystem', GET: 'DescribeFileSystems', DELETE: 'DeleteFileSystem' },
      'mount-targets': { POST: 'CreateMountTarget', GET: 'DescribeMountTargets', DELETE: 'DeleteMountTarget' },
      'access-points': { POST: 'CreateAccessPoint', GET: 'DescribeAccessPoints', DELETE: 'DeleteAccessPoint' },
      'resource-tags': { POST: 'TagResource', GET: 'ListTagsForResource', DELETE: 'UntagResource' },
    };
    const op = ops[collection ?? '']?.[method];
    const needsId = method === 'DELETE' || collection === 'resource-tags';
    return op && Boolean(id) === needsId ? op : undefined;
  }

  async handle(op: string, req: EfsRequest): Promise<EfsResponse> {
    const id = decodeURIComponent(req.path.split('/')[1] ?? '');
    switch (op) {
      case 'CreateFileSystem':
        return this.createFileSystem(req.body);
      case 'DescribeFileSystems':
        return this.describeFileSystems(req.query);
      case 'DeleteFileSystem':
        return this.deleteFileSystem(id);
      case 'CreateMountTarget':
        return this.createMountTarget(req.body);
      case 'DescribeMountTargets':
        return this.describeMountTargets(req.query);
      case 'DeleteMountTarget':
        return this.deleteMountTarget(id);
      case 'CreateAccessPoint':
        return this.createAccessPoint(req.body);
      case 'DescribeAccessPoints':
        return this.describeAccessPoints(req.query);
      case 'DeleteAccessPoint':
        return this.deleteAccessPoint(id);
      case 'TagResource':
        mergeTags(this.taggable(id), tagsOf(req.body));
        return { status: 200, body: {} };
      case 'UntagResource': {
        const keys = req.query.getAll('tagKeys');
        const tags = this.taggable(id);
        tags.splice(0, tags.length, ...tags.filter((t) => !keys.includes(t.Key)));
        return { status: 200, body: {} };
      }
      default:
        return { status: 200, body: { Tags: this.taggable(id) } };
    }
  }

  private taggable(id: string): EfsTag[] {
    if (id.startsWith('fsap-')) {
      const ap = this.state.accessPoints.find((a) => a.id === id);
      if (!ap) throw notFound.ap(id);
      return ap.tags;
    }
    return this.fileSystem(id).tags;
  }

  private async createFileSystem(body: Record<string, unknown>): Promise<EfsResponse> {
    const creationToken = str(body, 'CreationToken');
    if (!creationToken) throw badRequest('CreationToken is required');
    const existing = this.state.fileSystems.find((f) => f.creationToken === creationToken);
    if (existing)
      throw efsError('FileSystemAlreadyExists', 409, `File system '${existing.id}' already exists with creation token '${creationToken}'`, {
        FileSystemId: existing.id,
      });
    const performanceMode = str(body, 'PerformanceMode') ?? 'generalPurpose';
    if (!['generalPurpose', 'maxIO'].includes(performanceMode)) throw badRequest(`Invalid PerformanceMode '${performanceMode}'`);
    const encrypted = body['Encrypted'] === true;
    const kmsKeyId = str(body, 'KmsKeyId');
    if (kmsKeyId && !encrypted) throw badRequest('KmsKeyId requires Encrypted to be true');
    const fs: FileSystem = {
      id: newId('fs'),
      creationToken,
      performanceMode,
      throughputMode: str(body, 'ThroughputMode') ?? 'bursting',
      encrypted,
      kmsKeyId: encrypted ? (kmsKeyId ?? `arn:aws:kms:${this.cloud.region}:${ACCOUNT_ID}:alias/aws/elasticfilesystem`) : undefined,
      state: 'creating',
      due: this.due(),
      creationTime: Math.floor(Date.now() / 1000),
      tags: tagsOf(body),
    };
    await mkdir(this.cloud.paths.fileSystemDir(fs.id), { recursive: true });
    this.state.fileSystems.push(fs);
    return { status: 201, body: this.describeFs(fs) };
  }

  private describeFileSystems(q: URLSearchParams): EfsResponse {
    const id = q.get('FileSystemId');
    const token = q.get('CreationToken');
    if (id) this.fileSystem(id);
    const matching = this.state.fileSystems.filter((f) => (!id || f.id === id) && (!token || f.creationToken === token));
    const { items, next } = paged(matching, q.get('MaxItems'), q.get('Marker'));
    return { status: 200, body: { FileSystems: items.map((f) => this.describeFs(f)), Marker: q.get('Marker') ?? undefined, NextMarker: next } };
  }

  private async deleteFileSystem(id: string): Promise<EfsResponse> {
    const fs = this.fileSystem(id);
    if (this.state.mountTargets.some((m) => m.fileSystemId === id))
      throw efsError('FileSystemInUse', 409, `File system '${id}' has mount targets.`);
    this.state.fileSystems = this.state.fileSystems.filter((f) => f !== fs);
    this.state.accessPoints = this.state.accessPoints.filter((a) => a.fileSystemId !== id);
    await rm(this.cloud.paths.fileSystemDir(id), { recursive: true, force: true });
    return { status: 204 };
  }

  /** Mount targets take addresses in the first /24 of their subnet. */
  private nextIp(cidr: string): string {
    const [a, b, c] = cidr.split('.');
    const used = new Set(this.state.mountTargets.map((m) => m.ip));
    for (let host = 10; host < 255; host++) {
      const ip = `${a}.${b}.${c}.${host}`;
      if (!used.has(ip)) return ip;
    }
    throw efsError('NoFreeAddressesInSubnet', 409, 'The subnet has no free addresses.');
  }

  private async createMountTarget(body: Record<string, unknown>): Promise<EfsResponse> {
    const fsId = str(body, 'FileSystemId');
    const subnetId = str(body, 'SubnetId');
    if (!fsId || !subnetId) throw badRequest('FileSystemId and SubnetId are required');
    const fs = this.fileSystem(fsId);
    this.available(fs);
    const subnet = this.state.subnets.find((s) => s.id === subnetId);
    if (!subnet) throw efsError('SubnetNotFound', 400, `Subnet '${subnetId}' does not exist.`);
    if (this.state.mountTargets.some((m) => m.fileSystemId === fsId && m.zone === subnet.zone))
      throw efsError('MountTargetConflict', 409, `File system '${fsId}' already has a mount target in availability zone '${subnet.zone}'.`);
    const ip = str(body, 'IpAddress') ?? this.nextIp(subnet.cidr);
    if (this.state.mountTargets.some((m) => m.ip === ip)) throw efsError('IpAddressInUse', 409, `IP address ${ip} is already in use.`);
    const mt: MountTarget = { id: newId('fsmt'), fileSystemId: fsId, subnetId, zone: subnet.zone, ip, state: 'creating', due: this.due() };
    this.state.mountTargets.push(mt);
    await this.writeMountTargets();
    return { status: 200, body: this.describeMt(mt) };
  }

  private async writeMountTargets(): Promise<void> {
    await writeAtomic(this.cloud.paths.mountTargetsFile, JSON.stringify(this.mountTargets(), null, 2));
  }

  /** IP address → mount target, file system and folder: the content of mount-targets.json. */
  mountTargets(): Record<string, { mountTargetId: string; fileSystemId: string; availabilityZone: string; path: string }> {
    return Object.fromEntries(
      this.state.mountTargets.map((m) => [
        m.ip,
        { mountTargetId: m.id, fileSystemId: m.fileSystemId, availabilityZone: m.zone, path: this.cloud.paths.fileSystemDir(m.fileSystemId) },
      ]),
    );
  }

  private describeMountTargets(q: URLSearchParams): EfsResponse {
    const fsId = q.get('FileSystemId');
    const mtId = q.get('MountTargetId');
    const apId = q.get('AccessPointId');
    let matching: MountTarget[];
    if (mtId) {
      matching = this.state.mountTargets.filter((m) => m.id === mtId);
      if (!matching.length) throw notFound.mt(mtId);
    } else if (fsId) {
      this.fileSystem(fsId);
      matching = this.state.mountTargets.filter((m) => m.fileSystemId === fsId);
    } else if (apId) {
      const ap = this.state.accessPoints.find((a) => a.id === apId);
      if (!ap) throw notFound.ap(apId);
      matching = this.state.mountTargets.filter((m) => m.fileSystemId === ap.fileSystemId);
    } else throw badRequest('One of FileSystemId, MountTargetId or AccessPointId is required');
    const { items, next } = paged(matching, q.get('MaxItems'), q.get('Marker'));
    return { status: 200, body: { MountTargets: items.map((m) => this.describeMt(m)), Marker: q.get('Marker') ?? undefined, NextMarker: next } };
  }

  private async deleteMountTarget(id: string): Promise<EfsResponse> {
    if (!this.state.mountTargets.some((m) => m.id === id)) throw notFound.mt(id);
    this.state.mountTargets = this.state.mountTargets.filter((m) => m.id !== id);
    await this.writeMountTargets();
    return { status: 204 };
  }

  private async createAccessPoint(body: Record<string, unknown>): Promise<EfsResponse> {
    const clientToken = str(body, 'ClientToken');
    const fsId = str(body, 'FileSystemId');
    if (!clientToken || !fsId) throw badRequest('ClientToken and FileSystemId are required');
    const fs = this.fileSystem(fsId);
    this.available(fs);
    const posixUser = body['PosixUser'] as AccessPoint['posixUser'];
    const rootDirectory = { Path: '/', ...(body['RootDirectory'] as AccessPoint['rootDirectory'] | undefined) };
    const path = rootDirectory.Path ?? '/';
    if (!path.startsWith('/') || path.split('/').includes('..')) throw badRequest(`Invalid RootDirectory Path '${path}'`);
    const earlier = this.state.accessPoints.find((a) => a.clientToken === clientToken);
    if (earlier) {
      const same = JSON.stringify([earlier.fileSystemId, earlier.posixUser, earlier.rootDirectory]) === JSON.stringify([fsId, posixUser, rootDirectory]);
      if (same) return { status: 200, body: this.describeAp(earlier) };
      throw efsError('AccessPointAlreadyExists', 409, `Access point '${earlier.id}' already exists with client token '${clientToken}'`, {
        AccessPointId: earlier.id,
      });
    }
    const info = rootDirectory.CreationInfo;
    const folder = join(this.cloud.paths.fileSystemDir(fsId), path);
    // EFS creates the root directory with CreationInfo's owner and mode on first use, if it is missing
    if (info && !(await stat(folder).catch(() => undefined))) {
      await mkdir(folder, { recursive: true });
      await chown(folder, info.OwnerUid, info.OwnerGid);
      await chmod(folder, parseInt(info.Permissions, 8));
    }
    const ap: AccessPoint = { id: newId('fsap'), fileSystemId: fsId, clientToken, posixUser, rootDirectory, state: 'creating', due: this.due(), tags: tagsOf(body) };
    this.state.accessPoints.push(ap);
    return { status: 200, body: this.describeAp(ap) };
  }

  private describeAccessPoints(q: URLSearchParams): EfsResponse {
    const apId = q.get('AccessPointId');
    const fsId = q.get('FileSystemId');
    if (apId && !this.state.accessPoints.some((a) => a.id === apId)) throw notFound.ap(apId);
    if (fsId) this.fileSystem(fsId);
    const matching = this.state.accessPoints.filter((a) => (!apId || a.id === apId) && (!fsId || a.fileSystemId === fsId));
    const { items, next } = paged(matching, q.get('MaxResults'), q.get('NextToken'));
    return { status: 200, body: { AccessPoints: items.map((a) => this.describeAp(a)), NextToken: next } };
  }

  private async deleteAccessPoint(id: string): Promise<EfsResponse> {
    if (!this.state.accessPoints.some((a) => a.id === id)) throw notFound.ap(id);
    this.state.accessPoints = this.state.accessPoints.filter((a) => a.id !== id);
    return { status: 204 };
  }
}
