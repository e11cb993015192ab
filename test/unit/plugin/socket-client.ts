import http from 'node:http';

export interface SocketReply {
  status: number;
  contentType: string | undefined;
  body: string;
}

/** POSTs raw bytes to a unix-socket HTTP server, as dockerd does. */
export function post(socketPath: string, route: string, body: string | Buffer): Promise<SocketReply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath, path: route, method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/vnd.docker.plugins.v1.2+json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'], body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** One protocol call with a JSON body; the reply's body parsed. */
export async function call(socketPath: string, route: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const reply = await post(socketPath, route, JSON.stringify(body));
  return { status: reply.status, body: JSON.parse(reply.body) as Record<string, unknown> };
}
