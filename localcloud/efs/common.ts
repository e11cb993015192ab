import type { Cloud } from '../cloud.js';
import { ApiError } from '../errors.js';
import type { FileSystem } from '../state.js';

/** What the EFS operations share: request and response shapes, errors, arguments, paging, lookups. */

export interface EfsRequest {
  /** path below `/2015-02-01/` */
  path: string;
  query: URLSearchParams;
  body: Record<string, unknown>;
}

export interface EfsResponse {
  status: number;
  body?: unknown;
}

export const efsError = (code: string, status: number, message: string, fields: Record<string, string> = {}) =>
  new ApiError(code, message, status, fields);

export const notFound = {
  fs: (id: string) => efsError('FileSystemNotFound', 404, `File system '${id}' does not exist.`),
  mt: (id: string) => efsError('MountTargetNotFound', 404, `Mount target '${id}' does not exist.`),
  ap: (id: string) => efsError('AccessPointNotFound', 404, `Access point '${id}' does not exist.`),
};

export function badRequest(message: string): ApiError {
  return efsError('BadRequest', 400, message);
}

/** The resource id in the path, as in `file-systems/<id>`. */
export function resourceId(req: EfsRequest): string {
  return decodeURIComponent(req.path.split('/')[1] ?? '');
}

export function str(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw badRequest(`${key} must be a string`);
  return v;
}

/** Marker/NextToken paging: the token is the offset of the next page. */
export function paged<T>(items: T[], maxText: string | null, token: string | null): { items: T[]; next?: string } {
  const start = token ? Number(Buffer.from(token, 'base64url').toString()) : 0;
  if (!Number.isInteger(start) || start < 0) throw badRequest(`Invalid pagination token '${token}'`);
  const max = maxText ? Number(maxText) : 100;
  if (!Number.isInteger(max) || max < 1) throw badRequest(`Invalid page size '${maxText}'`);
  const end = start + max;
  return { items: items.slice(start, end), next: end < items.length ? Buffer.from(String(end)).toString('base64url') : undefined };
}

export function fileSystem(cloud: Cloud, id: string): FileSystem {
  const fs = cloud.state.fileSystems.find((f) => f.id === id);
  if (!fs) throw notFound.fs(id);
  return fs;
}

export function available(fs: FileSystem): void {
  if (fs.state !== 'available')
    throw efsError('IncorrectFileSystemLifeCycleState', 409, `File system '${fs.id}' is in the '${fs.state}' state.`);
}

/** When a resource created now becomes available. */
export function due(cloud: Cloud): number {
  return Date.now() + cloud.latency.efsResource();
}
