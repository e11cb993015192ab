import type { Cloud } from '../cloud.js';
import type { EfsTag } from '../state.js';
import { badRequest, fileSystem, notFound, resourceId, type EfsRequest, type EfsResponse } from './common.js';

export function tagsOf(body: Record<string, unknown>): EfsTag[] {
  const tags = body['Tags'] ?? [];
  if (!Array.isArray(tags) || tags.some((t) => typeof t?.Key !== 'string' || typeof t?.Value !== 'string'))
    throw badRequest('Tags must be a list of {Key, Value}');
  return tags.map((t: EfsTag) => ({ Key: t.Key, Value: t.Value }));
}

function taggable(cloud: Cloud, id: string): EfsTag[] {
  if (id.startsWith('fsap-')) {
    const ap = cloud.state.accessPoints.find((a) => a.id === id);
    if (!ap) throw notFound.ap(id);
    return ap.tags;
  }
  return fileSystem(cloud, id).tags;
}

export async function tagResource(cloud: Cloud, req: EfsRequest): Promise<EfsResponse> {
  const into = taggable(cloud, resourceId(req));
  for (const t of tagsOf(req.body)) {
    const existing = into.find((x) => x.Key === t.Key);
    if (existing) existing.Value = t.Value;
    else into.push(t);
  }
  return { status: 200, body: {} };
}

export async function untagResource(cloud: Cloud, req: EfsRequest): Promise<EfsResponse> {
  const keys = req.query.getAll('tagKeys');
  const tags = taggable(cloud, resourceId(req));
  tags.splice(0, tags.length, ...tags.filter((t) => !keys.includes(t.Key)));
  return { status: 200, body: {} };
}

export async function listTagsForResource(cloud: Cloud, req: EfsRequest): Promise<EfsResponse> {
  return { status: 200, body: { Tags: taggable(cloud, resourceId(req)) } };
}
