import { randomBytes } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';

/** Where dockerd looks for legacy (socket) plugins, whatever its --exec-root. */
export const PLUGIN_SOCKET_DIR = '/run/docker/plugins';
const PREFIX = 'stowage-test-';

export interface PluginName {
  /** What `docker volume create -d` takes. */
  name: string;
  /** The socket the plugin must listen on for dockerd to find it by that name. */
  socket: string;
}

/**
 * A plugin name no other test run and no developer's dockerd uses: every dockerd on the host
 * looks in the same socket folder, so a fixed name would make runs answer each other's calls.
 * Also removes test sockets nobody listens on any more (left by runs killed before afterAll).
 */
export async function uniquePluginName(): Promise<PluginName> {
  const entries = await readdir(PLUGIN_SOCKET_DIR).catch(() => []);
  for (const entry of entries.filter((e) => e.startsWith(PREFIX) && e.endsWith('.sock'))) {
    const socket = path.join(PLUGIN_SOCKET_DIR, entry);
    if (!(await listening(socket))) await rm(socket, { force: true });
  }
  const name = `${PREFIX}${randomBytes(4).toString('hex')}`;
  return { name, socket: path.join(PLUGIN_SOCKET_DIR, `${name}.sock`) };
}

/** Only a refused connection counts as dead: anything else might be a live plugin, so keep it. */
function listening(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = connect(socket);
    conn.once('connect', () => {
      conn.destroy();
      resolve(true);
    });
    conn.once('error', (err: NodeJS.ErrnoException) => resolve(err.code !== 'ECONNREFUSED'));
  });
}
