import { isoNow, type Cloud } from '../cloud.js';
import { ApiError } from '../errors.js';
import { refreshLoopSize } from '../loop.js';
import type { Params } from '../query.js';
import type { Modification, Volume, VolumeConfig } from '../state.js';
import type { XmlValue } from '../xml.js';
import { applyFilters, page, type FilterFields } from './filters.js';
import { sizeFile, TYPES, volumeConfig, type TypeLimits } from './volumes.js';

/**
 * Elastic Volumes: ModifyVolume and DescribeVolumesModifications. A modification goes `modifying`
 * → `optimizing` → `completed`; the image file grows at once and the loop device is told
 * (`losetup -c`), so the node sees the bigger device as it would on EBS.
 *
 * The cooldown is the six-hour rule the issue names ("After modifying a volume, you must wait at
 * least six hours", ModifyVolume in the EC2 API Reference until 2025). The current reference allows
 * up to four modifications in a rolling 24 hours once the previous one completed: the six-hour rule
 * is the stricter of the two, so a client that copes with it copes with EC2 today.
 */
export const COOLDOWN_MS = 6 * 3600_000;

/** How far along, as EC2 reports it: the first half while `modifying`, the second while `optimizing`. */
function progressOf(m: Modification, now: number): number {
  const share = (from: number, span: number) => (span <= 0 ? 0 : Math.min(1, Math.max(0, (now - from) / span)));
  if (m.state === 'completed') return 100;
  if (m.state === 'modifying') return Math.floor(49 * share(Date.parse(m.startTime), m.due - Date.parse(m.startTime)));
  const span = m.optimizingMs ?? 0;
  return 50 + Math.floor(49 * share(m.due - span, span));
}

function modificationXml(v: Volume, m: Modification, now = Date.now()): Record<string, XmlValue> {
  return {
    volumeId: v.id,
    modificationState: m.state,
    targetSize: m.target.size,
    targetIops: m.target.iops,
    targetVolumeType: m.target.type,
    targetThroughput: m.target.throughput,
    targetMultiAttachEnabled: false,
    originalSize: m.original.size,
    originalIops: m.original.iops,
    originalVolumeType: m.original.type,
    originalThroughput: m.original.throughput,
    originalMultiAttachEnabled: false,
    progress: progressOf(m, now),
    startTime: m.startTime,
    endTime: m.endTime,
  };
}

export async function modifyVolume(cloud: Cloud, p: Params): Promise<Record<string, XmlValue>> {
  const volume = cloud.volume(p.required('VolumeId'));
  if (volume.state !== 'available') throw new ApiError('IncorrectState', `The volume '${volume.id}' is in the '${volume.state}' state.`);
  const last = volume.modification;
  if (last && last.state !== 'completed') throw new ApiError('IncorrectModificationState', `Volume ${volume.id} is already being modified.`);
  // A request wrong in itself (a shrink) is refused as such, before the modification history counts.
  const size = p.int('Size') ?? volume.size;
  if (size < volume.size) throw new ApiError('InvalidParameterValue', `New size cannot be smaller than existing size`);
  if (last && Date.now() - Date.parse(last.startTime) < COOLDOWN_MS) {
    const next = new Date(Date.parse(last.startTime) + COOLDOWN_MS).toISOString();
    throw new ApiError('VolumeModificationRateExceeded', `You've reached the maximum modification rate per volume limit. Wait at least 6 hours between modifications per EBS volume (next allowed at ${next}).`);
  }
  const type = p.str('VolumeType') ?? volume.type;
  const keep = <T>(v: T | undefined, flag: keyof TypeLimits) => (type === volume.type && TYPES[type]?.[flag] ? v : undefined);
  const target = volumeConfig(size, type, p.int('Iops') ?? keep(volume.iops, 'iops'), p.int('Throughput') ?? keep(volume.throughput, 'throughput'));
  const original: VolumeConfig = { size: volume.size, type: volume.type, iops: volume.iops, throughput: volume.throughput };
  if (JSON.stringify(target) === JSON.stringify(original))
    throw new ApiError('InvalidParameterCombination', 'New configuration is identical to the current configuration.');
  if (size > volume.size) {
    await sizeFile(cloud.paths.volumeImage(volume.id), size);
    if (volume.attachment?.loop) await refreshLoopSize(volume.attachment.loop);
  }
  Object.assign(volume, target);
  volume.modification = {
    state: 'modifying',
    startTime: isoNow(),
    due: Date.now() + cloud.latency.modifyVolume(),
    optimizingMs: cloud.latency.optimizeVolume(size),
    original,
    target,
  };
  return { volumeModification: modificationXml(volume, volume.modification) };
}

const MODIFICATION_FILTERS: FilterFields<Volume> = {
  'volume-id': (v) => [v.id],
  'modification-state': (v) => [v.modification?.state],
  'target-size': (v) => [v.modification?.target.size],
  'target-volume-type': (v) => [v.modification?.target.type],
  'start-time': (v) => [v.modification?.startTime],
};

/** Only volumes that were ever modified have a modification; asking for another by id fails, as EC2 does. */
export async function describeVolumesModifications(cloud: Cloud, p: Params): Promise<Record<string, XmlValue>> {
  const ids = p.strings('VolumeId');
  const { volumes } = cloud.consistency.view();
  for (const id of ids) {
    const v = volumes.find((x) => x.id === id);
    if (!v) throw new ApiError('InvalidVolume.NotFound', `The volume '${id}' does not exist.`);
    if (!v.modification) throw new ApiError('InvalidVolumeModification.NotFound', `Modification for volume '${id}' does not exist.`);
  }
  const modified = volumes.filter((v) => v.modification && (ids.length === 0 || ids.includes(v.id)));
  const { items, nextToken } = page(applyFilters(modified, p, MODIFICATION_FILTERS), p, { max: 500, idsGiven: ids.length > 0, idSetName: 'volumeIdSet' });
  return { volumeModificationSet: items.map((v) => modificationXml(v, v.modification!)), nextToken };
}
