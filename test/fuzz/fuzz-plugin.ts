/**
 * A real plugin (startPlugin on a unix socket) inside a watched folder, for fuzzing: the socket,
 * the mount root and the state folder live in it next to sentinel files that nothing may touch.
 */
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Driver } from '../../drivers/driver.js';
import { loadConfig } from '../../plugin/config.js';
import { silentLogger } from '../../core/log.js';
import { startPlugin, type RunningPlugin } from '../../plugin/main.js';
import { removeTree } from '../helpers/owned-dir.js';
import { isUnder, treeOf } from './protocol-check.js';

export interface FuzzPlugin {
  root: string;
  socket: string;
  mountRoot: string;
  stateDir: string;
  plugin: RunningPlugin;
  /** The mount references as persisted (empty before the first Mount). */
  persistedMounts(): Promise<string>;
  /** Files and folders that appeared or went anywhere in the watched folder but the plugin's own. */
  strayChanges(): Promise<{ appeared: string[]; gone: string[] }>;
  close(): Promise<void>;
}

const SENTINELS = ['sentinel/keep', 'sentinel/etc/passwd', 'mnt-neighbour/data'];

export async function startFuzzPlugin(label: string, drivers: (mountRoot: string) => Driver[], isMounted?: (mp: string) => Promise<boolean>): Promise<FuzzPlugin> {
  const root = await mkdtemp(path.join(os.tmpdir(), `stowage-fuzz-${label}-`));
  for (const file of SENTINELS) {
    await mkdir(path.dirname(path.join(root, file)), { recursive: true });
    await writeFile(path.join(root, file), 'untouched');
  }
  const before = await treeOf(root);
  const socket = path.join(root, 'run', 'stowage.sock');
  const mountRoot = path.join(root, 'mnt');
  const stateDir = path.join(root, 'state');
  const config = loadConfig({ STOWAGE_SOCKET: socket, STOWAGE_MOUNT_ROOT: mountRoot, STOWAGE_STATE_DIR: stateDir, STOWAGE_DEFAULT_BACKING: 'relocatable' });
  const plugin = await startPlugin({ config, drivers: drivers(mountRoot), log: silentLogger, ...(isMounted && { isMounted }) });
  const own = [path.dirname(socket), mountRoot, stateDir];
  return {
    root, socket, mountRoot, stateDir, plugin,
    persistedMounts: () => readFile(path.join(stateDir, 'mounts.json'), 'utf8').catch(() => ''),
    strayChanges: async () => {
      const now = await treeOf(root);
      const outside = (rel: string) => !own.some((dir) => isUnder(path.join(root, rel), dir)) && !own.some((dir) => isUnder(dir, path.join(root, rel)));
      return {
        appeared: now.filter((p) => outside(p) && !before.includes(p)),
        gone: before.filter((p) => outside(p) && !now.includes(p)),
      };
    },
    /** Stops the plugin, unmounts whatever is still mounted in the folder, removes it. */
    close: async () => {
      try {
        await plugin.close();
      } finally {
        await removeTree(root);
      }
    },
  };
}
