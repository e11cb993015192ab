import type { Cloud } from '../cloud.js';
import { ApiError } from '../errors.js';
import type { Params } from '../query.js';
import type { Tags } from '../state.js';
import type { XmlValue } from '../xml.js';

export function tagSet(tags: Tags): XmlValue {
  const entries = Object.entries(tags);
  // EC2 leaves tagSet out when a resource has no tags
  return entries.length ? entries.map(([key, value]) => ({ key, value })) : undefined;
}

function readTags(list: Params[], into: Tags = {}): Tags {
  for (const t of list) {
    const key = t.required('Key');
    if (key.toLowerCase().startsWith('aws:'))
      throw new ApiError('InvalidParameterValue', `Tag keys starting with 'aws:' are reserved for internal use`);
    if (key.length > 128) throw new ApiError('InvalidParameterValue', `Tag key exceeds the maximum length of 128 characters`);
    const value = t.str('Value') ?? '';
    if (value.length > 256) throw new ApiError('InvalidParameterValue', `Tag value exceeds the maximum length of 256 characters`);
    into[key] = value;
  }
  if (Object.keys(into).length > 50) throw new ApiError('TagLimitExceeded', 'The maximum number of tags for a resource is 50');
  return into;
}

/** Tags from TagSpecification.N for the resource type this call creates; other types this call accepts are ignored. */
export function specifiedTags(p: Params, resourceType: string, alsoAccepted: string[] = []): Tags {
  const tags: Tags = {};
  for (const spec of p.list('TagSpecification')) {
    const type = spec.required('ResourceType');
    if (type === resourceType) readTags(spec.list('Tag'), tags);
    else if (!alsoAccepted.includes(type))
      throw new ApiError('InvalidParameterValue', `'${type}' is not a valid taggable resource type for this operation.`);
  }
  return tags;
}

function taggable(cloud: Cloud, id: string): { tags: Tags; instanceId?: string } {
  if (id.startsWith('vol-')) return cloud.volume(id);
  if (id.startsWith('snap-')) return cloud.snapshot(id);
  if (id.startsWith('i-')) return { tags: cloud.instance(id).tags, instanceId: id };
  throw new ApiError('InvalidID', `The ID '${id}' is not valid`);
}

function resources(cloud: Cloud, p: Params) {
  const ids = p.strings('ResourceId');
  if (!ids.length) throw new ApiError('MissingParameter', 'The request must contain the parameter resourceIdSet');
  // validate every id before touching any, as EC2 does
  return ids.map((id) => taggable(cloud, id));
}

export async function createTags(cloud: Cloud, p: Params): Promise<Record<string, XmlValue>> {
  const targets = resources(cloud, p);
  readTags(p.list('Tag')); // validate before changing any resource
  for (const t of targets) {
    // a hung instance cannot write its own heartbeat: its tag writes are lost
    if (t.instanceId && cloud.faults.unresponsive(t.instanceId)) continue;
    readTags(p.list('Tag'), t.tags);
  }
  return { return: true };
}

export async function deleteTags(cloud: Cloud, p: Params): Promise<Record<string, XmlValue>> {
  const targets = resources(cloud, p);
  const wanted = p.list('Tag').map((t) => ({ key: t.required('Key'), value: t.str('Value') }));
  for (const t of targets) {
    for (const key of Object.keys(t.tags)) {
      const match = wanted.length === 0 || wanted.some((w) => w.key === key && (w.value === undefined || w.value === t.tags[key]));
      if (match) delete t.tags[key];
    }
  }
  return { return: true };
}
