/** What every reply of the protocol server must be, whatever was asked, and where its files may lie. */
import http from 'node:http';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { SocketReply } from '../unit/plugin/socket-client.js';
import type { RequestSpec } from './requests.js';

const CONTENT_TYPE = 'application/vnd.docker.plugins.v1.2+json';
/** An operator reads Err in `docker` output: a message, not a dump of the request. */
const MAX_ERR_LENGTH = 2000;

/** The server's body limit: past it, it may answer and close before the body is all sent. */
const BODY_LIMIT = 1024 * 1024;

/**
 * Sends one fuzzed request as it is: method, route, content type and bytes. 'closed' when the
 * server closed the connection on a body over its limit before the client finished sending it.
 */
export function send(socketPath: string, spec: RequestSpec): Promise<SocketReply | 'closed'> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = { Accept: CONTENT_TYPE };
    if (spec.contentType !== '') headers['Content-Type'] = spec.contentType;
    // A connection of its own: a body sent without a length (a GET) must not bleed into the next request.
    const req = http.request({ socketPath, path: spec.route, method: spec.method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') }));
    });
    const failed = (err: NodeJS.ErrnoException) => {
      const refusedEarly = spec.body.length > BODY_LIMIT && (err.code === 'EPIPE' || err.code === 'ECONNRESET');
      if (refusedEarly) resolve('closed');
      else reject(err);
    };
    req.on('error', failed);
    req.on('response', (res) => res.on('error', failed));
    req.end(spec.body);
  });
}

export interface Answer {
  status: number;
  json: Record<string, unknown>;
}

/** Throws, naming the request, unless the reply is a well-formed protocol answer. */
export function wellFormed(spec: RequestSpec, reply: SocketReply | 'closed'): Answer {
  // dockerd never sends a body that large; closing on it is refusing it.
  if (reply === 'closed') return { status: 413, json: {} };
  const what = `${spec.method} ${spec.route} (${spec.contentType || 'no content type'}, ${spec.body.length} bytes: ${String(spec.body).slice(0, 120)})`;
  const fail = (why: string): never => {
    throw new Error(`${what} → ${reply.status} ${reply.contentType}: ${why}\n${reply.body.slice(0, 500)}`);
  };
  if (![200, 404, 500].includes(reply.status)) fail('status is not 200, 404 or 500');
  if (!reply.contentType?.startsWith(CONTENT_TYPE)) fail(`content type is not ${CONTENT_TYPE}`);
  let json: unknown;
  try {
    json = JSON.parse(reply.body);
  } catch {
    fail('body is not JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) fail('body is not a JSON object');
  const body = json as Record<string, unknown>;
  if (reply.status === 200) {
    if ('Err' in body && body.Err !== '') fail('200 with a non-empty Err');
  } else {
    if (typeof body.Err !== 'string' || body.Err === '') fail('an error without Err');
    const err = body.Err as string;
    if (err.length > MAX_ERR_LENGTH) fail(`Err is ${err.length} characters long`);
    if (err.startsWith('internal error')) fail('an internal error instead of a clear message');
  }
  return { status: reply.status, json: body };
}

/** Every file and folder under `dir`, as paths relative to it. */
export async function treeOf(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true });
  return entries.map((e) => path.normalize(e)).sort();
}

/** Whether `p` is `root` or lies inside it. */
export function isUnder(p: string, root: string): boolean {
  const rel = path.relative(root, path.resolve(p));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}
