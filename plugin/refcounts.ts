import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Backing } from '../core/volume-options.js';
import type { Logger } from '../core/log.js';
import { writeAtomically } from '../core/atomic-file.js';

/** What this node holds of one volume: where it is mounted and which Mount IDs use it. */
export interface MountRecord {
  backing: Backing;
  mountpoint: string;
  ids: string[];
}

interface StateFile {
  version: 1;
  volumes: Record<string, MountRecord>;
}

/**
 * Mount reference counts by Mount ID, the plugin's only node-local state. dockerd never
 * re-activates a restarted socket plugin, so the counts are written to disk on every change
 * (temp file, fsync, rename: a crash leaves the old or the new file, never half of one).
 */
export class RefcountStore {
  private volumes = new Map<string, MountRecord>();
  private writing: Promise<void> = Promise.resolve();
  private readonly file: string;

  constructor(
    private readonly stateDir: string,
    private readonly log: Logger,
  ) {
    this.file = path.join(stateDir, 'mounts.json');
  }

  /**
   * Loads the counts left by the previous run and drops those of volumes the kernel no longer has
   * mounted (a reboot, or an unmount done by hand): a stale count would keep a volume attached forever.
   */
  async load(isMounted: (mountpoint: string) => Promise<boolean>): Promise<void> {
    await fs.mkdir(this.stateDir, { recursive: true, mode: 0o700 });
    let parsed: StateFile | undefined;
    try {
      parsed = JSON.parse(await fs.readFile(this.file, 'utf8')) as StateFile;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.log.error({ err, file: this.file }, 'mount state unreadable; starting with no references');
      }
    }
    this.volumes = new Map();
    let dropped = false;
    for (const [name, record] of Object.entries(parsed?.volumes ?? {})) {
      if (!record || !Array.isArray(record.ids) || typeof record.mountpoint !== 'string') continue;
      if (await isMounted(record.mountpoint)) {
        this.volumes.set(name, { backing: record.backing, mountpoint: record.mountpoint, ids: [...record.ids] });
        this.log.info({ volume: name, references: record.ids.length, mountpoint: record.mountpoint }, 'mount references restored');
      } else {
        dropped = true;
        this.log.warn({ volume: name, references: record.ids.length, mountpoint: record.mountpoint }, 'volume no longer mounted; dropping its stale references');
      }
    }
    if (dropped) await this.persist();
  }

  get(name: string): MountRecord | undefined {
    const record = this.volumes.get(name);
    return record && { ...record, ids: [...record.ids] };
  }

  count(name: string): number {
    return this.volumes.get(name)?.ids.length ?? 0;
  }

  names(): string[] {
    return [...this.volumes.keys()];
  }

  async add(name: string, id: string, backing: Backing, mountpoint: string): Promise<void> {
    const record = this.volumes.get(name) ?? { backing, mountpoint, ids: [] };
    if (!record.ids.includes(id)) record.ids.push(id);
    this.volumes.set(name, record);
    await this.persist();
  }

  /** Returns false when the ID held no reference (an Unmount dockerd repeats, or one for another node). */
  async remove(name: string, id: string): Promise<boolean> {
    const record = this.volumes.get(name);
    if (!record || !record.ids.includes(id)) return false;
    record.ids = record.ids.filter((held) => held !== id);
    if (record.ids.length === 0) this.volumes.delete(name);
    await this.persist();
    return true;
  }

  private persist(): Promise<void> {
    const snapshot: StateFile = { version: 1, volumes: Object.fromEntries(this.volumes) };
    const body = JSON.stringify(snapshot, null, 1);
    // Writes are chained so an older snapshot can never land after a newer one.
    this.writing = this.writing.catch(() => undefined).then(() => writeAtomically(this.file, body));
    return this.writing;
  }
}
