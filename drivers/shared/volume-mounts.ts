import { rmdir } from 'node:fs/promises';
import type { Host } from '../../host/host.js';
import type { Logger } from '../../core/log.js';

/** How long a plain umount of a share may take before it is detached lazily. */
const UNMOUNT_TIMEOUT_MS = 20_000;

/**
 * Unmounts a share. A server that stopped answering hangs umount: after a timeout (bounded by the
 * operation's deadline) the mount is detached with `umount -l` and a warning, so the node moves on.
 */
export async function unmountShare(host: Host, target: string, deadline: number, log: Logger): Promise<void> {
  const timeoutMs = Math.max(1000, Math.min(UNMOUNT_TIMEOUT_MS, deadline - Date.now() - 5000));
  await host.withLog(log).unmount(target, { timeoutMs, lazyAfterTimeout: true });
  // The empty mount point goes too; anything left in it (not ours) stays.
  await rmdir(target).catch((err: unknown) => log.debug({ target, err }, 'mount point left in place'));
}
