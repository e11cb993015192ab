import path from 'node:path';
import type { Logger } from '../../core/log.js';
import type { Host } from '../../host/host.js';
import type { VolumeCatalog } from './volume-catalog.js';

export interface LossWatchDeps {
  host: Host;
  catalog: VolumeCatalog;
  me: string;
  /** A loss is acted on only once EC2 kept showing it this long: a lagging Describe flips back. */
  confirmMs: number;
  mountRoot: string;
  log: Logger;
  /** A Mount in flight owns its volume's state; the watch leaves it alone. */
  mounting: (name: string) => boolean;
}

/** How long one check may take: it runs on the heartbeat's interval. */
const CHECK_MS = 15_000;

/**
 * Invariant 7: a node that finds it lost a volume it had mounted (another node fenced it) unmounts
 * it, loudly, so nothing goes on writing to a device that is no longer the volume; its references
 * are then answered with an error (the held-reference check finds it unmounted). A lagging
 * Describe must not unmount a volume: a loss counts once every read for `confirmMs` showed it.
 */
export class LossWatch {
  private checking = false;
  /** Volumes that looked lost, and since when (this node's clock). */
  private readonly suspected = new Map<string, number>();

  constructor(private readonly deps: LossWatchDeps) {}

  async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const { host, catalog, log, mountRoot } = this.deps;
      const deadline = Date.now() + CHECK_MS;
      const mounted = (await host.mounts()).filter((m) => path.dirname(m.target) === mountRoot);
      const names = new Set(mounted.map((m) => path.basename(m.target)));
      for (const name of this.suspected.keys()) if (!names.has(name)) this.suspected.delete(name);
      if (mounted.length === 0) return;
      const volumes = await catalog.all(deadline, log);
      for (const mount of mounted) {
        const name = path.basename(mount.target);
        const cached = volumes.get(name);
        if (!cached || this.deps.mounting(name) || (this.holds(cached.attachment) && !this.suspected.has(name))) continue;
        // Suspected: read EC2 itself, not the cache.
        const volume = await catalog.lookup(name, deadline, log);
        if (!volume || this.holds(volume.attachment)) {
          this.suspected.delete(name);
          continue;
        }
        const since = this.suspected.get(name) ?? Date.now();
        this.suspected.set(name, since);
        if (Date.now() - since >= this.deps.confirmMs) await this.lost(name, volume.id, volume.attachment, mount.target);
      }
    } catch (err) {
      this.deps.log.warn({ err }, 'could not check that this node still holds its mounted volumes');
    } finally {
      this.checking = false;
    }
  }

  private holds(attachment: { instanceId: string; state: string } | undefined): boolean {
    return attachment?.instanceId === this.deps.me && attachment.state !== 'detaching';
  }

  private async lost(name: string, volumeId: string, attachment: { instanceId: string; state: string } | undefined, target: string): Promise<void> {
    const log = this.deps.log.child({ volume: name });
    this.suspected.delete(name);
    log.error(
      { volumeId, mountpoint: target, holder: attachment?.instanceId, attachment: attachment?.state },
      `volume ${name} (${volumeId}) was LOST: it is no longer attached to this instance (fenced by another node?); unmounting it so nothing writes to it here`,
    );
    await this.deps.host.unmount(target, { timeoutMs: 5000, lazyAfterTimeout: true }).catch((err: unknown) => {
      log.error({ err, volumeId, mountpoint: target }, `volume ${name} was LOST and could not be unmounted here; stop what holds it`);
    });
  }
}
