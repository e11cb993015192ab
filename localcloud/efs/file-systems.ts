import { mkdir, rm } from 'node:fs/promises';
import type { Cloud } from '../cloud.js';
import { ACCOUNT_ID, newId, type FileSystem } from '../state.js';
import { badRequest, due, efsError, fileSystem, paged, resourceId, str, type EfsRequest, type EfsResponse } from './common.js';
import { tagsOf } from './tags.js';

/** A file system is the folder `DIR/efs/<fs-id>/`. */

function describeFs(cloud: Cloud, fs: FileSystem) {
  return {
    OwnerId: ACCOUNT_ID,
    CreationToken: fs.creationToken,
    FileSystemId: fs.id,
    FileSystemArn: `arn:aws:elasticfilesystem:${cloud.region}:${ACCOUNT_ID}:file-system/${fs.id}`,
    CreationTime: fs.creationTime,
    LifeCycleState: fs.state,
    Name: fs.tags.find((t) => t.Key === 'Name')?.Value,
    NumberOfMountTargets: cloud.state.mountTargets.filter((m) => m.fileSystemId === fs.id).length,
    SizeInBytes: { Value: 6144, ValueInStandard: 6144, ValueInIA: 0 },
    PerformanceMode: fs.performanceMode,
    Encrypted: fs.encrypted,
    KmsKeyId: fs.kmsKeyId,
    ThroughputMode: fs.throughputMode,
    Tags: fs.tags,
    FileSystemProtection: { ReplicationOverwriteProtection: 'ENABLED' },
  };
}

export async function createFileSystem(cloud: Cloud, { body }: EfsRequest): Promise<EfsResponse> {
  const creationToken = str(body, 'CreationToken');
  if (!creationToken) throw badRequest('CreationToken is required');
  const existing = cloud.state.fileSystems.find((f) => f.creationToken === creationToken);
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
    kmsKeyId: encrypted ? (kmsKeyId ?? `arn:aws:kms:${cloud.region}:${ACCOUNT_ID}:alias/aws/elasticfilesystem`) : undefined,
    state: 'creating',
    due: due(cloud),
    creationTime: Math.floor(Date.now() / 1000),
    tags: tagsOf(body),
  };
  await mkdir(cloud.paths.fileSystemDir(fs.id), { recursive: true });
  cloud.state.fileSystems.push(fs);
  return { status: 201, body: describeFs(cloud, fs) };
}

export async function describeFileSystems(cloud: Cloud, { query: q }: EfsRequest): Promise<EfsResponse> {
  const id = q.get('FileSystemId');
  const token = q.get('CreationToken');
  if (id) fileSystem(cloud, id);
  const matching = cloud.state.fileSystems.filter((f) => (!id || f.id === id) && (!token || f.creationToken === token));
  const { items, next } = paged(matching, q.get('MaxItems'), q.get('Marker'));
  return { status: 200, body: { FileSystems: items.map((f) => describeFs(cloud, f)), Marker: q.get('Marker') ?? undefined, NextMarker: next } };
}

export async function deleteFileSystem(cloud: Cloud, req: EfsRequest): Promise<EfsResponse> {
  const id = resourceId(req);
  const fs = fileSystem(cloud, id);
  if (cloud.state.mountTargets.some((m) => m.fileSystemId === id)) throw efsError('FileSystemInUse', 409, `File system '${id}' has mount targets.`);
  cloud.state.fileSystems = cloud.state.fileSystems.filter((f) => f !== fs);
  cloud.state.accessPoints = cloud.state.accessPoints.filter((a) => a.fileSystemId !== id);
  await rm(cloud.paths.fileSystemDir(id), { recursive: true, force: true });
  return { status: 204 };
}
