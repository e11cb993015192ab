import type { Cloud } from '../cloud.js';
import { ApiError } from '../errors.js';
import { advance } from '../lifecycle.js';
import { sparseCopy } from '../loop.js';
import type { Params } from '../query.js';
import { ACCOUNT_ID, newId, type Snapshot } from '../state.js';
import type { XmlValue } from '../xml.js';
import { specifiedTags } from './tags.js';

/** EC2's volume id of every copied snapshot: "an arbitrary source volume ID. Do not use it." */
const COPY_VOLUME_ID = 'vol-ffffffff';

/**
 * CopySnapshot into the region the request is signed for, from any region of this emulator. The data
 * is copied now (a copy holds the source as it is when asked); the copy stays `pending` for
 * latency.copySnapshot of the data that region does not hold yet from that volume: a first copy
 * is whole, later ones incremental, as EBS charges them. Unencrypted sources may be encrypted; an
 * encrypted copy takes KmsKeyId or the destination region's default EBS key (keys are regional).
 * A ClientToken answers the live snapshot an earlier request with it made. The SDK's PresignedUrl
 * and DestinationRegion are accepted and not checked.
 */
export async function copySnapshot(cloud: Cloud, p: Params): Promise<Record<string, XmlValue>> {
  const sourceRegion = p.required('SourceRegion');
  const sourceId = p.required('SourceSnapshotId');
  const clientToken = p.str('ClientToken');
  const earlier = clientToken ? cloud.state.snapshots.find((s) => s.clientToken === clientToken) : undefined;
  if (earlier) return { snapshotId: earlier.id };
  const source = cloud.peer(sourceRegion);
  if (!source) throw new ApiError('InvalidParameterValue', `Value (${sourceRegion}) for parameter SourceRegion is invalid. Unknown region.`);
  // the source region's time passes too (every region shares one action queue: this is safe)
  if (source !== cloud) {
    await advance(source);
    await source.save();
  }
  const from = source.snapshot(sourceId);
  if (from.state !== 'completed') throw new ApiError('IncorrectState', `Snapshot '${from.id}' is in state '${from.state}' and cannot be copied.`);
  const kmsKeyId = p.str('KmsKeyId');
  const encrypted = from.encrypted || (p.bool('Encrypted') ?? false);
  if (kmsKeyId && !(p.bool('Encrypted') ?? false))
    throw new ApiError('InvalidParameterDependency', 'The parameter KmsKeyId requires the parameter Encrypted to be set.');
  const tags = specifiedTags(p, 'snapshot');

  const id = newId('snap');
  await sparseCopy(source.paths.snapshotImage(from.id), cloud.paths.snapshotImage(id));
  const origin = { region: sourceRegion, snapshotId: from.id, volumeId: from.volumeId };
  const previous = cloud.state.snapshots.filter((s) => s.copiedFrom?.region === origin.region && s.copiedFrom.volumeId === origin.volumeId).at(-1);
  const bytes = Math.max(0, from.allocatedBytes - (previous?.allocatedBytes ?? 0));
  const start = Date.now();
  const copy: Snapshot = {
    id,
    volumeId: COPY_VOLUME_ID,
    volumeSize: from.volumeSize,
    state: 'pending',
    start,
    due: start + Math.max(cloud.latency.copySnapshot(bytes), cloud.faults.slowSnapshotMs),
    startTime: new Date(start).toISOString(),
    description: p.str('Description') ?? `[Copied ${from.id} from ${sourceRegion}]`,
    encrypted,
    kmsKeyId: encrypted ? (kmsKeyId ?? (source === cloud ? from.kmsKeyId : undefined) ?? `arn:aws:kms:${cloud.region}:${ACCOUNT_ID}:alias/aws/ebs`) : undefined,
    allocatedBytes: from.allocatedBytes,
    tags,
    copiedFrom: origin,
    ...(clientToken && { clientToken }),
  };
  cloud.state.snapshots.push(copy);
  return { snapshotId: id };
}
