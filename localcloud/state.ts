import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

/** The emulated account's resources, persisted as one JSON document under DIR. */

export type Tags = Record<string, string>;
export type InstanceState = 'pending' | 'running' | 'stopping' | 'stopped' | 'shutting-down' | 'terminated';

/** `due` fields are epoch milliseconds at which the resource may take its next state. */
export interface Instance {
  id: string;
  reservationId: string;
  zone: string;
  subnetId: string;
  privateIp: string;
  imageId: string;
  instanceType: string;
  state: InstanceState;
  due: number;
  launchTime: string;
  tags: Tags;
}

export interface Attachment {
  instanceId: string;
  device: string;
  state: 'attaching' | 'attached' | 'detaching';
  attachTime: string;
  due: number;
  /** fault injection: stays `attaching` until detached */
  stuck: boolean;
  force: boolean;
  /** the loop device backing it, once attached */
  loop?: string;
}

export interface VolumeConfig {
  size: number;
  type: string;
  iops?: number;
  throughput?: number;
}

export interface Modification {
  state: 'modifying' | 'optimizing' | 'completed';
  startTime: string;
  due: number;
  /** how long `optimizing` lasts once reached (absent in state written before it was modelled) */
  optimizingMs?: number;
  /** when it reached `completed`, ISO 8601 */
  endTime?: string;
  original: VolumeConfig;
  target: VolumeConfig;
}

export interface Volume extends VolumeConfig {
  id: string;
  zone: string;
  encrypted: boolean;
  kmsKeyId?: string;
  snapshotId?: string;
  state: 'creating' | 'available' | 'deleting';
  due: number;
  createTime: string;
  tags: Tags;
  attachment?: Attachment;
  modification?: Modification;
  /** a volume restored from a snapshot loads its blocks from it meanwhile (DescribeVolumeStatus) */
  initialization?: Initialization;
}

export interface Initialization {
  /** VolumeInitializationRate (MiB/s) when provisioned */
  rate?: number;
  start: number;
  due: number;
}

/** A CreateVolume ClientToken, kept after its volume is deleted, as EC2 keeps them. */
export interface ClientToken {
  token: string;
  /** the request's parameters, to tell a retry from a conflicting reuse */
  fingerprint: string;
  /** the volume as that request created it, to answer a retry once it is deleted */
  volume: Volume;
}

export interface Snapshot {
  id: string;
  volumeId: string;
  volumeSize: number;
  state: 'pending' | 'completed';
  start: number;
  due: number;
  startTime: string;
  description: string;
  encrypted: boolean;
  kmsKeyId?: string;
  /** bytes allocated in the volume when it was taken; the next snapshot's duration grows with the difference */
  allocatedBytes: number;
  tags: Tags;
  /** CopySnapshot's source, to charge the next copy of that volume only for what changed */
  copiedFrom?: { region: string; snapshotId: string; volumeId: string };
  /** CopySnapshot's ClientToken: a retry answers this snapshot */
  clientToken?: string;
}

export interface Subnet {
  id: string;
  zone: string;
  zoneId: string;
  cidr: string;
}

export interface EfsTag {
  Key: string;
  Value: string;
}

export type EfsLifeCycle = 'creating' | 'available' | 'deleting';

export interface FileSystem {
  id: string;
  creationToken: string;
  performanceMode: string;
  throughputMode: string;
  encrypted: boolean;
  kmsKeyId?: string;
  state: EfsLifeCycle;
  due: number;
  creationTime: number;
  tags: EfsTag[];
}

export interface MountTarget {
  id: string;
  fileSystemId: string;
  subnetId: string;
  zone: string;
  ip: string;
  state: EfsLifeCycle;
  due: number;
}

export interface PosixUser {
  Uid: number;
  Gid: number;
  SecondaryGids?: number[];
}

export interface RootDirectory {
  Path?: string;
  CreationInfo?: { OwnerUid: number; OwnerGid: number; Permissions: string };
}

export interface AccessPoint {
  id: string;
  fileSystemId: string;
  clientToken: string;
  posixUser?: PosixUser;
  rootDirectory: RootDirectory;
  state: EfsLifeCycle;
  due: number;
  tags: EfsTag[];
}

export interface CloudState {
  version: 1;
  region: string;
  subnets: Subnet[];
  instances: Instance[];
  volumes: Volume[];
  clientTokens: ClientToken[];
  snapshots: Snapshot[];
  fileSystems: FileSystem[];
  mountTargets: MountTarget[];
  accessPoints: AccessPoint[];
}

export const ACCOUNT_ID = '123456789012';
/** the default VPC every subnet belongs to */
export const VPC_ID = 'vpc-0000000000000000a';

/** AWS-looking ids: prefix and 17 hex digits. */
export function newId(prefix: string): string {
  return `${prefix}-${randomBytes(9).toString('hex').slice(0, 17)}`;
}

export function emptyState(region: string): CloudState {
  return { version: 1, region, subnets: [], instances: [], volumes: [], clientTokens: [], snapshots: [], fileSystems: [], mountTargets: [], accessPoints: [] };
}

/** Temp file + fsync + rename: a crash leaves the old or the new document, never half of one. */
export async function writeAtomic(file: string, content: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, file);
}

export async function loadState(file: string): Promise<CloudState | undefined> {
  try {
    const state = JSON.parse(await readFile(file, 'utf8')) as CloudState;
    // written before tokens outlived their volumes
    state.clientTokens ??= [];
    return state;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
