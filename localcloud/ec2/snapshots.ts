import { rm } from 'node:fs/promises';
import { isoNow, type Cloud } from '../cloud.js';
import { ApiError } from '../errors.js';
import { allocatedBytes, sparseCopy } from '../loop.js';
import type { Params } from '../query.js';
import { ACCOUNT_ID, newId, type Snapshot } from '../state.js';
import type { XmlValue } from '../xml.js';
import { applyFilters, byIds, page, type FilterFields } from './filters.js';
import { snapshotProgress, snapshotXml } from './shapes.js';
import { specifiedTags } from './tags.js';

export async function createSnapshot(cloud: Cloud, p: Params): Promise<Record<string, XmlValue>> {
  const volume = cloud.volume(p.required('VolumeId'));
  if (volume.state !== 'available') throw new ApiError('IncorrectState', `The volume '${volume.id}' is in the '${volume.state}' state.`);
  const tags = specifiedTags(p, 'snapshot');
  const id = newId('snap');
  // the copy is taken now, so the snapshot holds the data of this moment however long it stays pending
  const image = cloud.paths.volumeImage(volume.id);
  await sparseCopy(image, cloud.paths.snapshotImage(id));
  const allocated = await allocatedBytes(image);
  const previous = cloud.state.snapshots.filter((s) => s.volumeId === volume.id).at(-1);
  const written = Math.max(0, allocated - (previous?.allocatedBytes ?? 0));
  const start = Date.now();
  const snapshot: Snapshot = {
    id,
    volumeId: volume.id,
    volumeSize: volume.size,
    state: 'pending',
    start,
    due: start + Math.max(cloud.latency.snapshot(written), cloud.faults.slowSnapshotMs),
    startTime: new Date(start).toISOString(),
    description: p.str('Description') ?? '',
    encrypted: volume.encrypted,
    kmsKeyId: volume.kmsKeyId,
    allocatedBytes: allocated,
    tags,
  };
  cloud.state.snapshots.push(snapshot);
  return snapshotXml(snapshot);
}

const SNAPSHOT_FILTERS: FilterFields<Snapshot> = {
  'snapshot-id': (s) => [s.id],
  'volume-id': (s) => [s.volumeId],
  status: (s) => [s.state],
  description: (s) => [s.description],
  progress: (s) => [snapshotProgress(s)],
  'volume-size': (s) => [s.volumeSize],
  'start-time': (s) => [s.startTime],
  encrypted: (s) => [s.encrypted],
  'owner-id': () => [ACCOUNT_ID],
};

/** OwnerId.N / RestorableBy are accepted and ignored: every snapshot belongs to the one emulated account. */
export async function describeSnapshots(cloud: Cloud, p: Params): Promise<Record<string, XmlValue>> {
  const ids = p.strings('SnapshotId');
  const { snapshots } = cloud.consistency.view();
  const all = ids.length
    ? byIds(snapshots, ids, (missing) => new ApiError('InvalidSnapshot.NotFound', `The snapshot '${missing.join(', ')}' does not exist.`))
    : snapshots;
  const { items, nextToken } = page(applyFilters(all, p, SNAPSHOT_FILTERS), p, { max: 1000, idsGiven: ids.length > 0, idSetName: 'snapshotIdSet' });
  return { snapshotSet: items.map(snapshotXml), nextToken };
}

export async function deleteSnapshot(cloud: Cloud, p: Params): Promise<Record<string, XmlValue>> {
  const snapshot = cloud.snapshot(p.required('SnapshotId'));
  await rm(cloud.paths.snapshotImage(snapshot.id), { force: true });
  cloud.state.snapshots = cloud.state.snapshots.filter((s) => s !== snapshot);
  return { return: true };
}
