import { stat } from 'node:fs/promises';
import type { Volume } from '@aws-sdk/client-ec2';
import { resolveNodeIdentity } from '../../aws/identity.js';
import type { Logger } from '../../core/log.js';
import type { Filesystem } from '../../core/volume-options.js';
import type { Host } from '../../host/host.js';
import { createLinuxHost } from '../../host/linux-host.js';
import type { OpsIo } from './context.js';
import { UsageError } from './exit-codes.js';

/** The instance the command runs on, where a volume can be attached to read its filesystem. */
export interface ProbeNode {
  instanceId: string;
  zone: string;
  region: string;
  host: Host;
}

/** This machine as a node, or why it cannot read a volume's device. */
export type Here = { node: ProbeNode } | { node: undefined; why: string };

/** IMDS answers at once on an instance; off EC2 the command should not wait long to learn it is not on one. */
const IMDS_TIMEOUT_MS = 1000;

/**
 * A node is an instance identity (STOWAGE_INSTANCE_ID + STOWAGE_AZ, else IMDS) and a device folder
 * (STOWAGE_DEVICE_DIR, default /dev/disk/by-id) where attached volumes appear, as for the plugin.
 */
export async function findHere(env: OpsIo['env'], log: Logger): Promise<Here> {
  const deviceDir = env.STOWAGE_DEVICE_DIR || '/dev/disk/by-id';
  let identity;
  try {
    identity = await resolveNodeIdentity({
      ...(env.STOWAGE_INSTANCE_ID && env.STOWAGE_AZ && { instanceId: env.STOWAGE_INSTANCE_ID, az: env.STOWAGE_AZ }),
      ...(env.AWS_EC2_METADATA_SERVICE_ENDPOINT && { imdsEndpoint: env.AWS_EC2_METADATA_SERVICE_ENDPOINT }),
      imdsTimeoutMs: IMDS_TIMEOUT_MS,
    });
  } catch (err) {
    log.debug({ err }, 'no instance identity: not on a node');
    return { node: undefined, why: 'this machine is not an EC2 instance (no instance metadata, and STOWAGE_INSTANCE_ID/STOWAGE_AZ are not set)' };
  }
  const isDir = await stat(deviceDir).then((s) => s.isDirectory(), () => false);
  if (!isDir) return { node: undefined, why: `the device folder ${deviceDir} (STOWAGE_DEVICE_DIR) does not exist here` };
  return { node: { ...identity, host: createLinuxHost({ deviceDir, log }) } };
}

/** How adopt learns a volume's filesystem: read on this node, or taken from --fs. */
export type FsSource = { probeOn: ProbeNode } | { given: Filesystem; notProbed: string };

/**
 * Invariant 9 needs the filesystem read from the device when it can be: on a node in the volume's
 * zone and region, with the volume detached or attached to that node. Otherwise --fs must say it.
 */
export function chooseFsSource(volume: Volume, region: string, here: Here, given: Filesystem | undefined): FsSource {
  const id = volume.VolumeId ?? '';
  const zone = volume.AvailabilityZone ?? '';
  const holder = (volume.Attachments ?? []).find((a) => a.State !== 'detached')?.InstanceId;
  let why: string;
  if (!here.node) why = here.why;
  else if (here.node.region !== region || here.node.zone !== zone) why = `${id} is in ${zone}, this node (${here.node.instanceId}) in ${here.node.zone}`;
  else if (holder !== undefined && holder !== here.node.instanceId) why = `${id} is attached to instance ${holder}, not to this node`;
  else return { probeOn: here.node };
  if (given) return { given, notProbed: why };
  throw new UsageError(
    `cannot read the filesystem of ${id} from here: ${why}. Run stowage adopt on a node in ${zone} (it attaches the volume there, ` +
      'reads it with blkid and detaches it), or pass --fs ext4|xfs if you know the filesystem',
  );
}
