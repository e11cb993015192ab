import type { Cloud } from '../cloud.js';
import * as accessPoints from './access-points.js';
import type { EfsRequest, EfsResponse } from './common.js';
import * as fileSystems from './file-systems.js';
import * as mountTargets from './mount-targets.js';
import * as tags from './tags.js';

/** The EFS REST-JSON API: one folder per file system under `DIR/efs/`. */

export type { EfsRequest, EfsResponse } from './common.js';
export { mountTargetsByIp } from './mount-targets.js';

export type EfsOperation = (cloud: Cloud, req: EfsRequest) => Promise<EfsResponse>;

/** The operations Stowage uses, by collection and HTTP method; any other route is refused. */
const ROUTES: Record<string, Record<string, { name: string; run: EfsOperation }>> = {
  'file-systems': {
    POST: { name: 'CreateFileSystem', run: fileSystems.createFileSystem },
    GET: { name: 'DescribeFileSystems', run: fileSystems.describeFileSystems },
    DELETE: { name: 'DeleteFileSystem', run: fileSystems.deleteFileSystem },
  },
  'mount-targets': {
    POST: { name: 'CreateMountTarget', run: mountTargets.createMountTarget },
    GET: { name: 'DescribeMountTargets', run: mountTargets.describeMountTargets },
    DELETE: { name: 'DeleteMountTarget', run: mountTargets.deleteMountTarget },
  },
  'access-points': {
    POST: { name: 'CreateAccessPoint', run: accessPoints.createAccessPoint },
    GET: { name: 'DescribeAccessPoints', run: accessPoints.describeAccessPoints },
    DELETE: { name: 'DeleteAccessPoint', run: accessPoints.deleteAccessPoint },
  },
  'resource-tags': {
    POST: { name: 'TagResource', run: tags.tagResource },
    GET: { name: 'ListTagsForResource', run: tags.listTagsForResource },
    DELETE: { name: 'UntagResource', run: tags.untagResource },
  },
};

/** The operation a request asks for, named for fault injection; undefined when the route is unknown. */
export function efsOperation(method: string, path: string): { name: string; run: EfsOperation } | undefined {
  const [collection, id] = path.split('/');
  const op = ROUTES[collection ?? '']?.[method];
  const needsId = method === 'DELETE' || collection === 'resource-tags';
  return op && Boolean(id) === needsId ? op : undefined;
}
