import { CopySnapshotCommand, DeleteSnapshotCommand, DescribeSnapshotsCommand, DescribeVolumesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { callInStep, type RetryPolicy } from '../aws/call.js';
import type { CallCounter } from '../aws/call-counter.js';
import { isNotFound } from '../aws/errors.js';
import { allPages } from '../aws/pages.js';
import type { OperationContext } from '../core/context.js';
import { ConfigError, PendingError, type ErrorContext } from '../core/errors.js';
import { drCopyTags, newestDataFirst, toDrCopyRecord, type DrCopyRecord } from '../core/schema/dr-copy-record.js';
import type { EbsVolume } from '../core/schema/ebs-volume.js';
import type { StoredSnapshot } from '../core/schema/snapshot-record.js';
import { Tags } from '../core/schema/tags.js';
import { drCopiesToPrune } from './retention.js';

export interface DrCopyDeps {
  /** The EC2 client of a region (aws/regional-clients.ts RegionalEc2.get): the DR region's. */
  ec2In: (region: string) => EC2Client;
  counter: CallCounter;
  cluster: string;
  /** The region the backups are taken in (the plugin's AWS_REGION). */
  sourceRegion: string;
  /** STOWAGE_DR_KMS_KEY_ID: the DR region's KMS key for the copies; absent: that region's default EBS key. */
  kmsKeyId?: string | undefined;
  retry?: RetryPolicy;
}

/** The copy in the DR region, and how many older copies retention deleted there. */
export interface DrCopy {
  region: string;
  snapshotId: string;
  sourceSnapshotId: string;
  /** `pending` just after the copy started; `completed` when an earlier call had made it. */
  state: string;
  pruned: number;
}

/**
 * Copies one completed backup of `volume` to the volume's DR region (its `drregion` tag: the option,
 * or STOWAGE_DR_REGION's default, is tagged at Create), encrypted with the DR region's key
 * (`kmsKeyId`), tagged with the cluster, the name, the source region and backup and the volume's
 * options, so the volume can be restored there without its own region. Then keeps the newest
 * `backupretain` completed copies of the name there (snapshot/retention.ts drCopiesToPrune).
 *
 * Call it after each completed backup, with the volume as it was backed up. A volume without
 * `drregion` is left alone (undefined). It does not wait for the copy (cross-region copies take
 * minutes): the copy is pending on return, `stowage dr status` shows it. Idempotent: a copy of the
 * same backup already there is answered instead of a second one. Throws a CloudError (retryable
 * when AWS's failure was) if the DR region does not take the copy; the backup itself is untouched.
 */
export async function copyToDrRegion(deps: DrCopyDeps, volume: EbsVolume, backup: StoredSnapshot, step: OperationContext): Promise<DrCopy | undefined> {
  const region = volume.drRegion;
  if (region === undefined) return undefined;
  const context = { volume: volume.name, snapshotId: backup.id, region };
  if (region === deps.sourceRegion)
    throw new ConfigError(`volume ${volume.name}: drregion=${region} is the region it lives in; a DR copy goes to another region`, context);
  if (backup.state !== 'completed') throw new PendingError(`backup ${backup.id} of ${volume.name} is ${backup.state}; only a completed backup is copied to ${region}`, context);
  const ec2 = deps.ec2In(region);
  const aws = <T>(operation: string, send: () => Promise<T>, extra: ErrorContext = {}) =>
    callInStep(deps.counter, operation, step, { ...context, ...extra }, send, deps.retry);

  const before = await drCopiesOf(ec2, deps.cluster, volume.name, aws);
  const earlier = before.find((c) => c.sourceSnapshot === backup.id);
  let copy: { id: string; state: string };
  if (earlier) copy = earlier;
  else {
    const out = await aws('CopySnapshot', () =>
      ec2.send(
        new CopySnapshotCommand({
          SourceRegion: deps.sourceRegion,
          SourceSnapshotId: backup.id,
          Description: `stowage DR copy of ${volume.name} backup ${backup.id} from ${deps.sourceRegion}`,
          Encrypted: true,
          ...(deps.kmsKeyId !== undefined && { KmsKeyId: deps.kmsKeyId }),
          TagSpecifications: [{ ResourceType: 'snapshot', Tags: drCopyTags(deps.cluster, volume, backup, deps.sourceRegion) }],
        }),
      ),
    );
    copy = { id: out.SnapshotId!, state: 'pending' };
    step.log.info({ ...context, copyId: copy.id }, 'DR copy started');
  }
  const pruned = await pruneDrCopies(ec2, deps.cluster, volume.name, volume.backupRetain, before, aws);
  if (pruned.length > 0) step.log.info({ ...context, deleted: pruned, keep: volume.backupRetain }, 'old DR copies deleted (retention)');
  return { region, snapshotId: copy.id, sourceSnapshotId: backup.id, state: copy.state, pruned: pruned.length };
}

type Aws = <T>(operation: string, send: () => Promise<T>, extra?: ErrorContext) => Promise<T>;

/** Every DR copy of one name (or of every name) in the region of `ec2`, newest data first. */
export async function drCopiesOf(ec2: EC2Client, cluster: string, name: string | undefined, aws: Aws): Promise<DrCopyRecord[]> {
  const found = await allPages(
    (token) =>
      aws('DescribeSnapshots', () =>
        ec2.send(
          new DescribeSnapshotsCommand({
            OwnerIds: ['self'],
            Filters: [
              { Name: `tag:${Tags.cluster}`, Values: [cluster] },
              { Name: `tag:${Tags.snapshotReason}`, Values: ['dr-copy'] },
              ...(name !== undefined ? [{ Name: `tag:${Tags.volume}`, Values: [name] }] : []),
            ],
            MaxResults: 1000,
            NextToken: token,
          }),
        ),
      ),
    (page) => page.Snapshots?.map(toDrCopyRecord),
  );
  return newestDataFirst(found);
}

/** Deletes the copies retention names; a copy a volume of the name there was made from is kept. */
async function pruneDrCopies(ec2: EC2Client, cluster: string, name: string, keep: number, copies: DrCopyRecord[], aws: Aws): Promise<string[]> {
  if (copies.filter((c) => c.state === 'completed').length <= keep) return [];
  const volumes = await aws('DescribeVolumes', () =>
    ec2.send(
      new DescribeVolumesCommand({
        Filters: [
          { Name: `tag:${Tags.cluster}`, Values: [cluster] },
          { Name: `tag:${Tags.volume}`, Values: [name] },
        ],
      }),
    ),
  );
  const protect = new Set((volumes.Volumes ?? []).flatMap((v) => (v.SnapshotId ? [v.SnapshotId] : [])));
  const doomed = drCopiesToPrune(copies, keep, protect);
  for (const c of doomed)
    await aws('DeleteSnapshot', () => ec2.send(new DeleteSnapshotCommand({ SnapshotId: c.id })), { copyId: c.id }).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
  return doomed.map((c) => c.id);
}
