import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';

/**
 * The token a request carries: the SDK's access key id (`Credential=<token>/…` of its SigV4
 * header), or `Authorization: Bearer <token>` for the admin API and IMDS.
 */
function presented(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization ?? '';
  return /Credential=([^/,\s]+)\//.exec(auth)?.[1] ?? /^Bearer (\S+)$/.exec(auth)?.[1];
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Serves only requests that carry the token: an embedded localcloud listens on a loopback port
 * any local user could reach, and the token lives in a 0600 file only root (the plugin and the
 * operator's CLI) can read.
 */
export function requireToken(server: Server, token: string): void {
  const handlers = server.listeners('request') as RequestListener[];
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const given = presented(req);
    if (given !== undefined && same(given, token)) {
      for (const handle of handlers) handle(req, res);
      return;
    }
    req.resume();
    res.writeHead(403, { 'content-type': 'text/plain' });
    res.end('localcloud: this emulator serves only its plugin and the stowage CLI (token missing or wrong)\n');
  });
}
