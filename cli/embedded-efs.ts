import { Tags } from '../core/schema/tags.js';
import { DescribeSubnetsCommand, type EC2Client } from '@aws-sdk/client-ec2';
import {
  CreateFileSystemCommand,
  CreateMountTargetCommand,
  DescribeFileSystemsCommand,
  DescribeMountTargetsCommand,
  type EFSClient,
} from '@aws-sdk/client-efs';
import { delay } from '../core/delay.js';

/** How long an embedded localcloud may take to make its file system available (zero latency: instantly). */
const READY_WITHIN_MS = 30_000;

/**
 * The one EFS file system an embedded localcloud gives shared volumes when STOWAGE_EFS_ID is unset,
 * with a mount target in every zone. Found by its creation token, so a restart reuses it.
 */
export async function embeddedFileSystem(efs: EFSClient, ec2: EC2Client, cluster: string): Promise<string> {
  const token = `stowage-embedded-${cluster}`;
  const find = async () => (await efs.send(new DescribeFileSystemsCommand({ CreationToken: token }))).FileSystems?.[0];
  let fs = await find();
  if (!fs) {
    await efs.send(new CreateFileSystemCommand({
      CreationToken: token, PerformanceMode: 'generalPurpose', Encrypted: true,
      Tags: [{ Key: 'Name', Value: token }, { Key: Tags.cluster, Value: cluster }],
    })).catch((err: unknown) => {
      // Another start made it first: the lookup below finds it.
      if ((err as Error).name !== 'FileSystemAlreadyExists') throw err;
    });
  }
  const until = Date.now() + READY_WITHIN_MS;
  while ((fs = await find())?.LifeCycleState !== 'available') {
    if (Date.now() > until) throw new Error(`embedded EFS file system ${fs?.FileSystemId ?? token} did not become available`);
    await delay(50);
  }
  const id = fs!.FileSystemId!;
  const have = new Set((await efs.send(new DescribeMountTargetsCommand({ FileSystemId: id }))).MountTargets?.map((m) => m.AvailabilityZoneName));
  for (const subnet of (await ec2.send(new DescribeSubnetsCommand({}))).Subnets ?? []) {
    if (have.has(subnet.AvailabilityZone)) continue;
    await efs.send(new CreateMountTargetCommand({ FileSystemId: id, SubnetId: subnet.SubnetId })).catch((err: unknown) => {
      if ((err as Error).name !== 'MountTargetConflict') throw err;
    });
  }
  return id;
}
