import type { Cloud } from '../cloud.js';
import { ApiError } from '../errors.js';
import type { Params } from '../query.js';
import type { Volume } from '../state.js';
import type { XmlValue } from '../xml.js';
import { applyFilters, byIds, page, type FilterFields } from './filters.js';

/**
 * DescribeVolumeStatus: every volume passes its I/O checks here; one restored from a snapshot also
 * reports how far it has loaded its blocks ("initializationStatusDetails", only for volumes created
 * from snapshots), at its provisioned VolumeInitializationRate when it has one.
 */
function initializationXml(v: Volume, now: number): Record<string, XmlValue> | undefined {
  const init = v.initialization;
  if (!init) return undefined;
  const span = init.due - init.start;
  const done = now >= init.due;
  return {
    initializationType: init.rate !== undefined ? 'provisioned-rate' : 'default',
    progress: done || span <= 0 ? 100 : Math.min(99, Math.floor(((now - init.start) / span) * 100)),
    // EC2 estimates the time left only for a provisioned rate.
    ...(init.rate !== undefined && { estimatedTimeToCompleteInSeconds: done ? 0 : Math.ceil((init.due - now) / 1000) }),
  };
}

function statusXml(cloud: Cloud, v: Volume, now: number): Record<string, XmlValue> {
  const initializing = v.initialization !== undefined && now < v.initialization.due;
  return {
    volumeId: v.id,
    availabilityZone: v.zone,
    availabilityZoneId: cloud.zoneId(v.zone),
    volumeStatus: {
      status: 'ok',
      details: [
        { name: 'io-enabled', status: 'passed' },
        { name: 'io-performance', status: 'not-applicable' },
        ...(v.initialization ? [{ name: 'initialization-state', status: initializing ? 'initializing' : 'completed' }] : []),
      ],
    },
    eventsSet: [],
    actionsSet: [],
    attachmentStatuses: v.attachment ? [{ instanceId: v.attachment.instanceId, ioPerformance: 'normal' }] : [],
    initializationStatusDetails: initializationXml(v, now),
  };
}

const STATUS_FILTERS: FilterFields<Volume> = {
  'availability-zone': (v) => [v.zone],
  'volume-status.status': () => ['ok'],
  'volume-status.details-name': (v) => ['io-enabled', 'io-performance', ...(v.initialization ? ['initialization-state'] : [])],
};

export async function describeVolumeStatus(cloud: Cloud, p: Params): Promise<Record<string, XmlValue>> {
  const ids = p.strings('VolumeId');
  const { volumes } = cloud.consistency.view();
  const all = ids.length
    ? byIds(volumes, ids, (missing) => new ApiError('InvalidVolume.NotFound', `The volume '${missing.join(', ')}' does not exist.`))
    : volumes;
  const now = Date.now();
  const { items, nextToken } = page(applyFilters(all, p, STATUS_FILTERS), p, { max: 1000, idsGiven: ids.length > 0, idSetName: 'volumeIdSet' });
  return { volumeStatusSet: items.map((v) => statusXml(cloud, v, now)), nextToken };
}
