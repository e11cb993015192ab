import { randomBytes } from 'node:crypto';
import path from 'node:path';

/** Where dockerd looks for legacy (socket) plugins, whatever its --exec-root. */
export const PLUGIN_SOCKET_DIR = '/run/docker/plugins';

export interface PluginName {
  /** What `docker volume create -d` takes. */
  name: string;
  /** The socket the plugin must listen on for dockerd to find it by that name. */
  socket: string;
}

/**
 * A plugin name no other test run and no developer's dockerd uses: every dockerd on the host
 * looks in the same socket folder, so a fixed name would make runs answer each other's calls.
 */
export function uniquePluginName(prefix = 'stowage-test'): PluginName {
  const name = `${prefix}-${randomBytes(4).toString('hex')}`;
  return { name, socket: path.join(PLUGIN_SOCKET_DIR, `${name}.sock`) };
}
