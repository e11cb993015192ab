import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Cloud } from './cloud.js';
import type { ConsistencySpec } from './consistency.js';
import { EC2_ACTIONS } from './ec2/index.js';
import { efsOperation, mountTargetsByIp } from './efs/index.js';
import { ApiError } from './errors.js';
import type { FaultSpec } from './faults.js';
import { Imds } from './imds.js';
import { advance } from './lifecycle.js';
import { Params } from './query.js';
import type { Regions } from './regions.js';
import { ec2Error, ec2Response } from './xml.js';

/**
 * One HTTP listener for everything: EC2 Query (`POST /`, in the region its signature names), EFS
 * (`/2015-02-01/…`, first region), IMDS (`/imds/<instance-id>/…`, any region) and the admin
 * endpoints (`/_localcloud/…`, first region unless `?region=`).
 */

const EFS_PREFIX = '/2015-02-01/';

/** Far above any request the SDK sends; a client cannot make the emulator hold more than this. */
const MAX_BODY_BYTES = 1024 * 1024;

/**
 * The body, or undefined once it passes MAX_BODY_BYTES (declared or sent). The rest is read and
 * dropped rather than the socket destroyed, so the client sees the 413 and keeps its connection.
 */
function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const tooLarge = () => {
      chunks.length = 0;
      req.removeAllListeners('data').resume();
      resolve(undefined);
    };
    if (Number(req.headers['content-length']) > MAX_BODY_BYTES) return tooLarge();
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) tooLarge();
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Injected failures come before validation, as AWS throttles before it looks at a request. */
function injectedFault(cloud: Cloud, action: string, throttle: ApiError): ApiError | undefined {
  if (cloud.faults.throttled(action)) return throttle;
  if (cloud.faults.serverError())
    return Math.random() < 0.5
      ? new ApiError('InternalError', 'An internal error has occurred', 500)
      : new ApiError('Unavailable', 'The service is unavailable. Please try again shortly.', 503);
  return undefined;
}

export type ErrorLog = (err: unknown) => void;

export function createLocalcloudServer(regions: Regions, logError: ErrorLog): Server {
  const imds = new Imds(regions);

  /** Runs an API call after letting time pass, and persists what it changed. */
  const call = <T>(cloud: Cloud, fn: () => Promise<T>) =>
    cloud.serialized(async () => {
      await advance(cloud);
      try {
        return await fn();
      } finally {
        await cloud.save();
      }
    });

  async function ec2(res: ServerResponse, form: string, authorization: string | undefined): Promise<void> {
    const requestId = randomUUID();
    const reply = (status: number, xml: string) => {
      res.writeHead(status, { 'content-type': 'text/xml;charset=UTF-8', 'x-amzn-requestid': requestId });
      res.end(xml);
    };
    const params = Params.parse(form);
    const action = params.str('Action') ?? '';
    try {
      const cloud = regions.forRequest(authorization);
      const handler = EC2_ACTIONS[action];
      if (!handler) throw new ApiError('InvalidAction', `The action ${action} is not valid for this web service.`);
      const fault = injectedFault(cloud, action, new ApiError('RequestLimitExceeded', 'Request limit exceeded.', 503));
      if (fault) throw fault;
      const body = await call(cloud, () => handler(cloud, params));
      reply(200, ec2Response(action, requestId, body));
    } catch (err) {
      if (!(err instanceof ApiError)) logError(err);
      const e = err instanceof ApiError ? err : new ApiError('InternalError', 'An internal error has occurred', 500);
      reply(e.status, ec2Error(e.code, e.message, requestId));
    }
  }

  async function efsApi(req: IncomingMessage, res: ServerResponse, url: URL, text: string): Promise<void> {
    const requestId = randomUUID();
    const reply = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-requestid': requestId, ...headers });
      res.end(body === undefined ? '' : JSON.stringify(body));
    };
    const path = url.pathname.slice(EFS_PREFIX.length);
    const cloud = regions.first;
    try {
      const op = efsOperation(req.method ?? '', path);
      if (!op) throw new ApiError('BadRequest', `Unsupported operation ${req.method} ${url.pathname}`, 400);
      const fault = injectedFault(cloud, op.name, new ApiError('ThrottlingException', 'Rate exceeded', 429));
      if (fault) throw fault;
      let body: Record<string, unknown> = {};
      try {
        body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
      } catch {
        throw new ApiError('BadRequest', 'The request body is not valid JSON', 400);
      }
      const out = await call(cloud, () => op.run(cloud, { path, query: url.searchParams, body }));
      reply(out.status, out.body);
    } catch (err) {
      if (!(err instanceof ApiError)) logError(err);
      const e = err instanceof ApiError ? err : new ApiError('InternalServerError', 'An internal error has occurred', 500);
      reply(e.status, { ErrorCode: e.code, Message: e.message, ...e.fields }, { 'x-amzn-errortype': e.code });
    }
  }

  async function admin(req: IncomingMessage, res: ServerResponse, url: URL, text: string): Promise<void> {
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const path = url.pathname;
    const region = url.searchParams.get('region');
    const cloud = region === null ? regions.first : regions.get(region);
    if (!cloud) return json(404, { error: `no region ${region}; this localcloud serves ${regions.all.map((c) => c.region).join(', ')}` });
    if (path === '/_localcloud/faults' && req.method === 'POST') {
      try {
        cloud.faults.set(JSON.parse(text || '{}') as FaultSpec);
      } catch {
        return json(400, { error: 'body must be a JSON FaultSpec' });
      }
      return json(200, cloud.faults.get());
    }
    if (path === '/_localcloud/faults' && req.method === 'GET') return json(200, cloud.faults.get());
    if (path === '/_localcloud/consistency' && req.method === 'POST') {
      try {
        cloud.consistency.set(JSON.parse(text || '{}') as ConsistencySpec);
      } catch (err) {
        return json(400, { error: `body must be a JSON ConsistencySpec: ${(err as Error).message}` });
      }
      return json(200, cloud.consistency.get());
    }
    if (path === '/_localcloud/consistency' && req.method === 'GET') return json(200, cloud.consistency.get());
    if (path === '/_localcloud/state' && req.method === 'GET') return json(200, await call(cloud, async () => cloud.state));
    if (path === '/_localcloud/mount-targets' && req.method === 'GET') return json(200, mountTargetsByIp(cloud));
    return json(404, { error: `no admin endpoint ${req.method} ${path}` });
  }

  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localcloud');
    if (Imds.isImdsPath(req.method ?? '', url.pathname)) return imds.handle(req, res, url.pathname);
    readBody(req)
      .then((text) => {
        if (text === undefined) {
          res.writeHead(413, { 'content-type': 'text/plain' });
          res.end(`localcloud: request body larger than ${MAX_BODY_BYTES} bytes\n`);
          return;
        }
        if (url.pathname.startsWith('/_localcloud/')) return admin(req, res, url, text);
        if (url.pathname.startsWith(EFS_PREFIX)) return efsApi(req, res, url, text);
        // EC2 Query: the SDK posts a form; parameters in the query string are honoured as AWS does
        return ec2(res, [url.searchParams.toString(), text].filter(Boolean).join('&'), req.headers.authorization);
      })
      .catch((err: unknown) => {
        logError(err);
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
  });
}
