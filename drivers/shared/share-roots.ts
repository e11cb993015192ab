import { rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Host } from '../../host/host.js';
import type { Logger } from '../../core/log.js';
import { SHARE_ROOT_FLAGS, withFlags, type Mounter, type ShareSource } from './mounter.js';
import { unmountShare } from './volume-mounts.js';

/**
 * The roots of the shares this node manages volumes on (an EFS file system, an NFS export), each
 * mounted once under `${mountRoot}/.shares/<key>` to make, list and retire volume directories.
 * Concurrent openers of one root share the mount.
 */
export class ShareRoots {
  private readonly opened = new Map<string, Promise<string>>();

  constructor(
    private readonly deps: { mounter: Mounter; host: Host; mountRoot: string },
  ) {}

  /** The local folder of the share's root, mounting it on first use. */
  open(key: string, source: () => Promise<ShareSource>, log: Logger): Promise<string> {
    let opening = this.opened.get(key);
    if (!opening) {
      const target = join(this.deps.mountRoot, '.shares', key);
      opening = source().then(async (s) => {
        await this.deps.mounter.mount(withFlags(s, SHARE_ROOT_FLAGS), target, log);
        log.info({ share: key, target }, 'share root mounted for volume management');
        return target;
      });
      // A failure is not remembered: the next request tries again.
      opening.catch(() => this.opened.delete(key));
      this.opened.set(key, opening);
    }
    return opening;
  }

  /** Unmounts every root this process mounted (plugin shutdown). */
  async close(log: Logger): Promise<void> {
    const targets = await Promise.all([...this.opened.values()].map((p) => p.catch(() => undefined)));
    this.opened.clear();
    for (const target of targets) {
      if (target === undefined) continue;
      await unmountShare(this.deps.host, target, Date.now() + 30_000, log);
      await rmdir(target).catch(() => undefined);
    }
  }
}
