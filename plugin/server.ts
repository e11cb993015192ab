import express, { type NextFunction, type Request, type Response } from 'express';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Server } from 'node:http';
import { describeError, InvalidRequestError, StowageError } from './errors.js';
import type { Logger } from './log.js';
import type { RequestTracker } from './metrics.js';
import type { VolumeView } from './volume-service.js';

const CONTENT_TYPE = 'application/vnd.docker.plugins.v1.2+json';
const MAX_BODY = '1mb';

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
type Endpoint = (body: Body, signal: AbortSignal) => Promise<Record<string, unknown>>;

function protocolVolume(v: VolumeView): Record<string, unknown> {
  return {
    Name: v.name,
    ...(v.mountpoint && { Mountpoint: v.mountpoint }),
    ...(v.createdAt && { CreatedAt: v.createdAt }),
    Status: v.status,
  };
}

function endpoints(volumes: VolumeHandler): Record<string, Endpoint> {
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
    '/VolumeDriver.List': async () => ({ Volumes: (await volumes.list()).map(protocolVolume), Err: '' }),
  };
}

function reply(res: Response, status: number, body: unknown): void {
  if (res.headersSent || res.destroyed) return;
  // Straight to node:http: express's send() (charset, ETag, freshness) is most of a small reply's cost.
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'Content-Type': CONTENT_TYPE, 'Content-Length': bytes.length });
  res.end(bytes);
}

/** For the calls that never outlive their client; only Mount watches the connection. */
const NEVER_ABORTED = new AbortController().signal;

/** A Mount that outlives dockerd's limit is abandoned by dockerd, which closes the connection. */
function abortedOnClose(res: Response): AbortSignal {
  const aborted = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) aborted.abort();
  });
  return aborted.signal;
}

const untracked: RequestTracker = (_endpoint, work) => work();

/** The docker.volumedriver/1.0 protocol as an express app; `track` times each request (metrics). */
export function createProtocolApp(volumes: VolumeHandler, log: Logger, track: RequestTracker = untracked): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  // dockerd sends its own content type; every body is JSON whatever the header says.
  app.use(express.json({ type: () => true, limit: MAX_BODY, strict: false }));

  for (const [route, handle] of Object.entries(endpoints(volumes))) {
    app.post(route, async (req: Request, res: Response) => {
      const started = Date.now();
      const body: unknown = req.body ?? {};
      const signal = route === '/VolumeDriver.Mount' ? abortedOnClose(res) : NEVER_ABORTED;
      const volume = typeof (body as Body).Name === 'string' ? ((body as Body).Name as string).slice(0, 128) : undefined;
      try {
        const answer = await track(route, () => {
          if (typeof body !== 'object' || body === null || Array.isArray(body)) {
            throw new InvalidRequestError('request body must be a JSON object');
          }
          return handle(body as Body, signal);
        });
        reply(res, 200, answer);
        log.debug({ endpoint: route, volume, ms: Date.now() - started }, 'request served');
      } catch (err) {
        const message = describeError(err);
        const level = err instanceof StowageError ? 'warn' : 'error';
        log[level]({ endpoint: route, volume, ms: Date.now() - started, err: err instanceof StowageError ? undefined : err, kind: (err as StowageError).kind }, message);
        reply(res, 500, { Err: message });
      }
    });
  }

  app.use((req: Request, res: Response) => {
    reply(res, 404, { Err: `unknown endpoint ${req.method} ${req.path.slice(0, 200)}` });
  });

  // Body-parser failures (malformed JSON, a body over the limit) end here.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const e = err as { type?: string; message?: string };
    const message =
      e.type === 'entity.too.large' ? `request body larger than ${MAX_BODY}`
      : e.type === 'entity.parse.failed' ? `malformed JSON in request body: ${e.message ?? ''}`
      : `bad request: ${e.message ?? String(err)}`;
    log.warn({ endpoint: req.path.slice(0, 200) }, message);
    reply(res, 500, { Err: message });
  });
  return app;
}

/**
 * Listens on the plugin's unix socket: creates the folder, replaces a stale socket left by a crash
 * (but never one another live plugin serves), and makes it 0660 so only root and the docker group
 * can talk to it.
 */
export async function listenOnSocket(app: express.Express, socketPath: string): Promise<Server> {
  await fs.mkdir(path.dirname(socketPath), { recursive: true, mode: 0o755 });
  if (await socketAnswers(socketPath)) {
    throw new Error(`another process is already serving ${socketPath}`);
  }
  await fs.rm(socketPath, { force: true });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(socketPath, (err?: Error) => (err ? reject(err) : resolve(s)));
    s.once('error', reject);
  });
  // A Mount may legitimately take up to dockerd's 2 minutes.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  await fs.chmod(socketPath, 0o660);
  return server;
}

function socketAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}
