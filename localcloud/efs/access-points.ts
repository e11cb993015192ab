import { chmod, chown, mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Cloud } from '../cloud.js';
import { ACCOUNT_ID, newId, type AccessPoint } from '../state.js';
import { available, badRequest, due, efsError, fileSystem, notFound, paged, resourceId, str, type EfsRequest, type EfsResponse } from './common.js';
import { tagsOf } from './tags.js';

/** An access point's root directory `/p` is the folder `p` in its file system's folder. */

function describeAp(cloud: Cloud, ap: AccessPoint) {
  return {
    ClientToken: ap.clientToken,
    Name: ap.tags.find((t) => t.Key === 'Name')?.Value,
    Tags: ap.tags,
    AccessPointId: ap.id,
    AccessPointArn: `arn:aws:elasticfilesystem:${cloud.region}:${ACCOUNT_ID}:access-point/${ap.id}`,
    FileSystemId: ap.fileSystemId,
    PosixUser: ap.posixUser,
    RootDirectory: ap.rootDirectory,
    OwnerId: ACCOUNT_ID,
    LifeCycleState: ap.state,
  };
}

export async function createAccessPoint(cloud: Cloud, { body }: EfsRequest): Promise<EfsResponse> {
  const clientToken = str(body, 'ClientToken');
  const fsId = str(body, 'FileSystemId');
  if (!clientToken || !fsId) throw badRequest('ClientToken and FileSystemId are required');
  available(fileSystem(cloud, fsId));
  const posixUser = body['PosixUser'] as AccessPoint['posixUser'];
  const rootDirectory = { Path: '/', ...(body['RootDirectory'] as AccessPoint['rootDirectory'] | undefined) };
  const path = rootDirectory.Path ?? '/';
  if (!path.startsWith('/') || path.split('/').includes('..')) throw badRequest(`Invalid RootDirectory Path '${path}'`);
  const earlier = cloud.state.accessPoints.find((a) => a.clientToken === clientToken);
  if (earlier) {
    const same = JSON.stringify([earlier.fileSystemId, earlier.posixUser, earlier.rootDirectory]) === JSON.stringify([fsId, posixUser, rootDirectory]);
    if (same) return { status: 200, body: describeAp(cloud, earlier) };
    throw efsError('AccessPointAlreadyExists', 409, `Access point '${earlier.id}' already exists with client token '${clientToken}'`, {
      AccessPointId: earlier.id,
    });
  }
  const info = rootDirectory.CreationInfo;
  const folder = join(cloud.paths.fileSystemDir(fsId), path);
  // EFS creates the root directory with CreationInfo's owner and mode on first use, if it is missing
  if (info && !(await stat(folder).catch(() => undefined))) {
    await mkdir(folder, { recursive: true });
    await chown(folder, info.OwnerUid, info.OwnerGid);
    await chmod(folder, parseInt(info.Permissions, 8));
  }
  const ap: AccessPoint = { id: newId('fsap'), fileSystemId: fsId, clientToken, posixUser, rootDirectory, state: 'creating', due: due(cloud), tags: tagsOf(body) };
  cloud.state.accessPoints.push(ap);
  return { status: 200, body: describeAp(cloud, ap) };
}

export async function describeAccessPoints(cloud: Cloud, { query: q }: EfsRequest): Promise<EfsResponse> {
  const apId = q.get('AccessPointId');
  const fsId = q.get('FileSystemId');
  if (apId && !cloud.state.accessPoints.some((a) => a.id === apId)) throw notFound.ap(apId);
  if (fsId) fileSystem(cloud, fsId);
  const matching = cloud.state.accessPoints.filter((a) => (!apId || a.id === apId) && (!fsId || a.fileSystemId === fsId));
  const { items, next } = paged(matching, q.get('MaxResults'), q.get('NextToken'));
  return { status: 200, body: { AccessPoints: items.map((a) => describeAp(cloud, a)), NextToken: next } };
}

export async function deleteAccessPoint(cloud: Cloud, req: EfsRequest): Promise<EfsResponse> {
  const id = resourceId(req);
  if (!cloud.state.accessPoints.some((a) => a.id === id)) throw notFound.ap(id);
  cloud.state.accessPoints = cloud.state.accessPoints.filter((a) => a.id !== id);
  return { status: 204 };
}
