import type { Cloud } from '../cloud.js';
import type { Params } from '../query.js';
import type { XmlValue } from '../xml.js';
import { copySnapshot } from './copy-snapshot.js';
import * as instances from './instances.js';
import * as snapshots from './snapshots.js';
import * as tags from './tags.js';
import * as modifications from './volume-modifications.js';
import { describeVolumeStatus } from './volume-status.js';
import * as volumes from './volumes.js';

export type Ec2Action = (cloud: Cloud, p: Params) => Promise<Record<string, XmlValue>>;

/** The EC2 actions Stowage uses; any other answers InvalidAction. */
export const EC2_ACTIONS: Record<string, Ec2Action> = {
  RunInstances: instances.runInstances,
  DescribeInstances: instances.describeInstances,
  TerminateInstances: instances.terminateInstances,
  StopInstances: instances.stopInstances,
  StartInstances: instances.startInstances,
  DescribeAvailabilityZones: instances.describeAvailabilityZones,
  DescribeSubnets: instances.describeSubnets,
  CreateVolume: volumes.createVolume,
  DescribeVolumes: volumes.describeVolumes,
  AttachVolume: volumes.attachVolume,
  DetachVolume: volumes.detachVolume,
  DeleteVolume: volumes.deleteVolume,
  ModifyVolume: modifications.modifyVolume,
  DescribeVolumesModifications: modifications.describeVolumesModifications,
  DescribeVolumeStatus: describeVolumeStatus,
  CreateSnapshot: snapshots.createSnapshot,
  CopySnapshot: copySnapshot,
  DescribeSnapshots: snapshots.describeSnapshots,
  DeleteSnapshot: snapshots.deleteSnapshot,
  CreateTags: tags.createTags,
  DeleteTags: tags.deleteTags,
};
