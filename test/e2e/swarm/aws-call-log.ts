import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One AWS request a node's plugin sent, as the emulator received it. */
export interface AwsCall {
  at: number;
  node: string;
  action: string;
}

export interface AwsCallLog {
  /** Where a node's plugin sends its AWS calls instead of localcloud itself (its STOWAGE_LOCALCLOUD_URL). */
  urlFor(node: string): Promise<string>;
  /** Calls sent between `from` and `to` (epoch ms), all nodes. */
  between(from: number, to: number): AwsCall[];
  close(): Promise<void>;
}

/** A node's CreateTags on its own instance: the fencing heartbeat, counted apart from the work of a move. */
export const HEARTBEAT = 'CreateTags(heartbeat)';

/** EC2 Query puts the action in the form body (or the query string); EFS names it by method and path. */
function actionOf(req: IncomingMessage, body: string): string {
  const url = new URL(req.url ?? '/', 'http://proxy');
  const form = new URLSearchParams([url.searchParams.toString(), body].filter(Boolean).join('&'));
  const action = form.get('Action');
  if (action === 'CreateTags' && form.get('ResourceId.1')?.startsWith('i-')) return HEARTBEAT;
  return action ?? `${req.method} ${url.pathname}`;
}

/**
 * Neither localcloud nor the plugin process exposes a count of AWS calls, so each node's plugin talks
 * to localcloud through its own small pass-through proxy here, which writes down every call, when,
 * and from which node. The plugin cannot tell: the proxy forwards bytes and status unchanged.
 */
export function startAwsCallLog(target: string): AwsCallLog {
  const calls: AwsCall[] = [];
  const servers: Server[] = [];
  const upstream = new URL(target);

  const proxyFor = (node: string): Server =>
    createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const forwarded = request(
          { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        forwarded.on('error', () => {
          res.writeHead(502);
          res.end();
        });
        if (!req.url?.startsWith('/_localcloud/')) calls.push({ at: Date.now(), node, action: actionOf(req, body.toString('utf8')) });
        forwarded.end(body);
      });
    });

  return {
    urlFor: async (node) => {
      const server = proxyFor(node);
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    },
    between: (from, to) => calls.filter((c) => c.at >= from && c.at <= to),
    close: async () => {
      await Promise.all(
        servers.map((s) => new Promise<void>((resolve) => {
          s.close(() => resolve());
          s.closeAllConnections();
        })),
      );
    },
  };
}
