import { promises as fs } from 'node:fs';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { describeError, InvalidRequestError, StowageError, VolumeNotFoundError } from '../core/errors.js';
import { ListReply, protocolVolume } from './list-reply.js';
import type { Logger } from '../core/log.js';
import type { RequestTracker } from './metrics.js';
import type { VolumeView } from './volume-service.js';

const CONTENT_TYPE = 'application/vnd.docker.plugins.v1.2+json';
const MAX_BODY = '1mb';
const MAX_BODY_BYTES = 1024 * 1024;

/** What the protocol needs of the volume side; the server knows nothing of backings or clouds. */
export interface VolumeHandler {
  create(name: unknown, options: unknown): Promise<void>;
  remove(name: unknown): Promise<void>;
  mount(name: unknown, id: unknown, signal: AbortSignal): Promise<string>;
  unmount(name: unknown, id: unknown): Promise<void>;
  path(name: unknown): Promise<string>;
  get(name: unknown): Promise<VolumeView>;
  list(): Promise<VolumeView[]>;
}

type Body = Record<string, unknown>;
/** An answer to serialize, or one already serialized. */
type Endpoint = (body: Body, signal: AbortSignal) => Promise<Record<string, unknown> | Buffer>;

function endpoints(volumes: VolumeHandler): Record<string, Endpoint> {
  const listReply = new ListReply();
  return {
    '/Plugin.Activate': async () => ({ Implements: ['VolumeDriver'] }),
    '/VolumeDriver.Capabilities': async () => ({ Capabilities: { Scope: 'global' } }),
    '/VolumeDriver.Create': async (b) => {
      await volumes.create(b.Name, b.Opts);
      return { Err: '' };
    },
    '/VolumeDriver.Remove': async (b) => {
      await volumes.remove(b.Name);
      return { Err: '' };
    },
    '/VolumeDriver.Mount': async (b, signal) => ({ Mountpoint: await volumes.mount(b.Name, b.ID, signal), Err: '' }),
    '/VolumeDriver.Unmount': async (b) => {
      await volumes.unmount(b.Name, b.ID);
      return { Err: '' };
    },
    '/VolumeDriver.Path': async (b) => ({ Mountpoint: await volumes.path(b.Name), Err: '' }),
    '/VolumeDriver.Get': async (b) => ({ Volume: protocolVolume(await volumes.get(b.Name)), Err: '' }),
    '/VolumeDriver.List': async () => listReply.bytes(await volumes.list()),
  };
}

function reply(res: ServerResponse, status: number, body: Record<string, unknown> | Buffer): void {
  if (res.headersSent || res.destroyed) return;
  const bytes = Buffer.isBuffer(body) ? body : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': CONTENT_TYPE, 'Content-Length': Buffer.byteLength(bytes) });
  res.end(bytes);
}

/** For the calls that never outlive their client; only Mount watches the connection. */
const NEVER_ABORTED = new AbortController().signal;

/** A Mount that outlives dockerd's limit is abandoned by dockerd, which closes the connection. */
function abortedOnClose(res: ServerResponse): AbortSignal {
  const aborted = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) aborted.abort();
  });
  return aborted.signal;
}

const untracked: RequestTracker = (_endpoint, work) => work();

/**
 * Reads a request body up to MAX_BODY_BYTES. Past the limit it answers undefined at once and
 * drops the rest as it arrives, so the connection stays usable and nothing is buffered.
 */
function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (declared > MAX_BODY_BYTES) {
      req.resume();
      resolve(undefined);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      if (size > MAX_BODY_BYTES) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) resolve(undefined);
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
    req.on('close', () => {
      if (!req.complete) reject(new InvalidRequestError('the client closed the connection before sending the whole body'));
    });
  });
}

/** The body as JSON; an empty body is an empty request, as dockerd sends for Activate. */
function parseBody(text: string): unknown {
  if (text.length === 0) return {};
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new InvalidRequestError(`malformed JSON in request body: ${(err as Error).message}`);
  }
}

function isObject(body: unknown): body is Body {
  return typeof body === 'object' && body !== null && !Array.isArray(body);
}

/** dockerd asks Get before every Create: a name that does not exist yet is the normal case there. */
function expectedMiss(route: string, err: StowageError): boolean {
  return route === '/VolumeDriver.Get' && err instanceof VolumeNotFoundError;
}

/**
 * The docker.volumedriver/1.0 protocol as a node:http request listener; `track` times each
 * request (metrics). Every body is JSON whatever content type dockerd declares.
 */
export function createProtocolHandler(volumes: VolumeHandler, log: Logger, track: RequestTracker = untracked): RequestListener {
  const routes = new Map(Object.entries(endpoints(volumes)));
  return (req, res) => {
    const route = (req.url ?? '').split('?', 1)[0]!;
    const handle = req.method === 'POST' ? routes.get(route) : undefined;
    if (!handle) {
      req.resume();
      reply(res, 404, { Err: `unknown endpoint ${String(req.method).slice(0, 20)} ${route.slice(0, 200)}` });
      return;
    }
    void serve(route, handle, req, res);
  };

  async function serve(route: string, handle: Endpoint, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const signal = route === '/VolumeDriver.Mount' ? abortedOnClose(res) : NEVER_ABORTED;
    let volume: string | undefined;
    try {
      const text = await readBody(req);
      if (text === undefined) throw new InvalidRequestError(`request body larger than ${MAX_BODY}`);
      const body = parseBody(text);
      if (isObject(body) && typeof body.Name === 'string') volume = body.Name.slice(0, 128);
      const answer = await track(route, () => {
        if (!isObject(body)) throw new InvalidRequestError('request body must be a JSON object');
        return handle(body, signal);
      });
      reply(res, 200, answer);
      log.debug({ endpoint: route, volume, ms: Date.now() - started }, 'request served');
    } catch (err) {
      const message = describeError(err);
      const level = err instanceof StowageError ? (expectedMiss(route, err) ? 'debug' : 'warn') : 'error';
      log[level]({ endpoint: route, volume, ms: Date.now() - started, err: err instanceof StowageError ? undefined : err, kind: (err as StowageError).kind }, message);
      reply(res, 500, { Err: message });
    }
  }
}

/** How long a connection may stay silent while nothing is served on it: an idle client must not hold one. */
const IDLE_MS = 30_000;
/**
 * Connections served at once; dockerd keeps one per call in flight, and a Mount may hold its
 * connection for STOWAGE_MOUNT_TIMEOUT, so this is far above what a busy node's Swarm needs.
 */
const MAX_CONNECTIONS = 256;

export interface SocketLimits {
  idleMs: number;
  maxConnections: number;
}

/**
 * Listens on the plugin's unix socket: creates the folder, replaces a stale socket left by a crash
 * (but never one another live plugin serves). The socket is 0660 with the plugin's own owner and
 * group (root:root for the managed plugin, whose only client is dockerd, also root): it is created
 * that way rather than chmod'ed after, so no other user can connect in between. No docker-group
 * access: anyone in that group already reaches volumes through dockerd.
 *
 * A connection that sends nothing for `idleMs` is closed, unless its request has arrived whole and
 * is being answered (a Mount may take STOWAGE_MOUNT_TIMEOUT, the other calls their own deadlines); at most
 * `maxConnections` are open at once, the rest are dropped on arrival.
 */
export async function listenOnSocket(handler: RequestListener, socketPath: string, limits: SocketLimits = { idleMs: IDLE_MS, maxConnections: MAX_CONNECTIONS }): Promise<Server> {
  await fs.mkdir(path.dirname(socketPath), { recursive: true, mode: 0o755 });
  if (await socketAnswers(socketPath)) {
    throw new Error(`another process is already serving ${socketPath}`);
  }
  await fs.rm(socketPath, { force: true });
  const requests = new WeakMap<net.Socket, IncomingMessage>();
  const server = createServer((req, res) => {
    requests.set(req.socket, req);
    res.once('close', () => requests.delete(req.socket));
    handler(req, res);
  });
  server.timeout = limits.idleMs;
  // Silence is the client's only while its request is incomplete; once it is whole, the wait is ours.
  server.on('timeout', (socket: net.Socket) => {
    if (!requests.get(socket)?.complete) socket.destroy();
  });
  server.maxConnections = limits.maxConnections;
  // These bound the arrival of a request, not its answer (a Mount answers long after its small body).
  server.headersTimeout = limits.idleMs;
  server.requestTimeout = limits.idleMs;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // listen() binds the socket file synchronously, so the umask covers that file and nothing else.
    const umask = process.umask(0o117);
    try {
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    } finally {
      process.umask(umask);
    }
  });
  return server;
}

/** Whether something accepts connections on the socket: a plugin that listens is ready for dockerd. */
export function socketAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}
