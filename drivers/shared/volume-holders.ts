import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { AnchoredDir } from '../../host/anchored-dir.js';
import { using } from '../../host/anchored-dir.js';
import { VolumeBusyError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { delay } from '../../core/delay.js';
import type { VolumeFolders } from './volume-folders.js';

/** `<cluster>/.holders/<volume>/<node>`: present while that node has the volume mounted. */
const HOLDERS_DIR = '.holders';
/** `<cluster>/.heartbeats/<node>`: rewritten by that node every beat while it runs. */
const BEATS_DIR = '.heartbeats';

export interface HolderTiming {
  /** How often a node rewrites its heartbeat on each share it uses. */
  beatMs: number;
  /** A heartbeat seen unchanged this long, on the judge's own clock, is a node that is gone. */
  staleMs: number;
}

export const HOLDER_TIMING: HolderTiming = { beatMs: 5_000, staleMs: 30_000 };

interface Observation {
  beat: string | undefined;
  /** Judge's monotonic clock: when this value was first seen, and when last looked at. */
  since: number;
  looked: number;
}

/**
 * Which nodes mount a shared volume, recorded on the share where every node sees it, so that a
 * Remove anywhere is refused while another node writes to the volume. A node that is gone leaves
 * its record behind; it is recognised because its heartbeat stops changing. Nothing compares two
 * clocks: the judge only notes, on its own monotonic clock, how long it has seen the same value.
 */
export class Holders {
  private readonly beating = new Map<string, { timer: NodeJS.Timeout; seq: number; writing: Promise<void> }>();
  private readonly seen = new Map<string, Observation>();
  /** This node's name in the records. */
  readonly node: string;
  private readonly timing: HolderTiming;
  private readonly clock: () => number;

  constructor(options: { node?: string; timing?: HolderTiming; clock?: () => number } = {}) {
    // The instance id when the wiring gives it; two nodes never share one, as they may a host name.
    this.node = options.node ?? hostname();
    this.timing = options.timing ?? HOLDER_TIMING;
    this.clock = options.clock ?? (() => performance.now());
  }

  /** Records that this node mounts `name`, its heartbeat on that share running first. */
  async hold(folders: VolumeFolders, name: string, log: Logger): Promise<void> {
    await this.startBeating(folders, log);
    await folders.inCluster(true, async (cluster) => {
      await cluster.mkdir(HOLDERS_DIR, 0o755);
      await using(await cluster.need(HOLDERS_DIR), async (holders) => {
        await holders.mkdir(name, 0o755);
        await using(await holders.need(name), (dir) => dir.writeRecord(this.node, `${new Date().toISOString()}\n`));
      });
    });
  }

  /** This node no longer mounts `name`. */
  async release(folders: VolumeFolders, name: string): Promise<void> {
    await folders.inCluster(false, async (cluster) => {
      const dir = await cluster.descend([HOLDERS_DIR, name]);
      if (dir) await using(dir, (d) => d.unlink(this.node));
    });
  }

  /** After the volume is gone: its records go too, so a new volume of the name starts with none. */
  async forget(folders: VolumeFolders, name: string): Promise<void> {
    await folders.inCluster(false, async (cluster) => {
      const holders = await cluster.child(HOLDERS_DIR);
      if (holders) await using(holders, (h) => h.removeTree(name));
    });
  }

  /**
   * Returns once no other node holds `name`: records of nodes whose heartbeat stayed unchanged for
   * `staleMs` are deleted (those nodes are gone). A node seen beating is a VolumeBusyError naming it;
   * one not yet judged when the deadline nears is a retryable one.
   */
  async check(folders: VolumeFolders, name: string, deadline: number, log: Logger): Promise<void> {
    const stopAt = this.clock() + Math.max(0, deadline - Date.now() - 5_000);
    for (;;) {
      const holders = (await folders.inCluster(false, (cluster) => this.holdersOf(cluster, name))) ?? [];
      const undecided: { node: string; unchangedMs: number }[] = [];
      for (const { node, beat } of holders) {
        const verdict = this.judge(`${folders.root}\0${node}`, beat);
        if (verdict === 'alive') {
          throw new VolumeBusyError(`volume ${name} is mounted on node ${node}; stop its tasks there first`, { volume: name, node }, false);
        }
        if (verdict === 'gone') {
          log.warn({ node, staleMs: this.timing.staleMs }, 'holder record of a node whose heartbeat stopped; it counts as gone');
          await folders.inCluster(false, async (cluster) => {
            const dir = await cluster.descend([HOLDERS_DIR, name]);
            if (dir) await using(dir, (d) => d.unlink(node));
          });
        } else {
          undecided.push({ node, unchangedMs: verdict });
        }
      }
      if (undecided.length === 0) return;
      if (this.clock() + this.timing.beatMs > stopAt) {
        const who = undecided.map((u) => `${u.node} (heartbeat unchanged for ${Math.round(u.unchangedMs / 1000)} s)`).join(', ');
        throw new VolumeBusyError(
          `volume ${name} is mounted on node(s) ${who}; a node counts as gone once its heartbeat is unchanged for ${this.timing.staleMs / 1000} s: stop its tasks, or retry`,
          { volume: name, nodes: undecided.map((u) => u.node).join(',') },
        );
      }
      await delay(this.timing.beatMs);
    }
  }

  /**
   * After a restart: a volume this node still has mounted (`mountedHere`) keeps its record, and the
   * heartbeat on its share starts again at once, before anyone takes this node for gone; a record
   * left by a mount that did not survive goes.
   */
  async resume(folders: VolumeFolders, mountedHere: ReadonlySet<string>, log: Logger): Promise<void> {
    const mine = await folders.inCluster(false, async (cluster) => {
      const holders = await cluster.child(HOLDERS_DIR);
      if (!holders) return [];
      return using(holders, async (h) => {
        const names: string[] = [];
        for (const entry of await h.entries()) {
          if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
          const dir = await h.child(entry.name).catch(() => undefined);
          if (dir && (await using(dir, (d) => d.lstat(this.node)))) names.push(entry.name);
        }
        return names;
      });
    });
    for (const name of mine ?? []) {
      if (mountedHere.has(name)) await this.startBeating(folders, log);
      else await this.release(folders, name);
    }
  }

  /**
   * Stops every heartbeat (plugin shutdown) once the beat being written ends: its open folders would
   * keep the share busy for the unmount that follows. The records stay, and read as gone after staleMs.
   */
  async stop(): Promise<void> {
    const states = [...this.beating.values()];
    this.beating.clear();
    for (const { timer } of states) clearInterval(timer);
    await Promise.all(states.map((s) => s.writing.catch(() => undefined)));
  }

  /** 'alive' when the value changed since a recent look; 'gone' when unchanged for staleMs; else ms unchanged so far. */
  private judge(key: string, beat: string | undefined): 'alive' | 'gone' | number {
    const now = this.clock();
    const seen = this.seen.get(key);
    if (seen && seen.beat === beat) {
      seen.looked = now;
      return now - seen.since >= this.timing.staleMs ? 'gone' : now - seen.since;
    }
    this.seen.set(key, { beat, since: now, looked: now });
    // A change across a long gap between looks says the node beat then, not that it is alive now.
    return seen && now - seen.looked < this.timing.staleMs ? 'alive' : 0;
  }

  private async holdersOf(cluster: AnchoredDir, name: string): Promise<{ node: string; beat: string | undefined }[]> {
    const dir = await cluster.descend([HOLDERS_DIR, name]);
    if (!dir) return [];
    // This node's own record: the plugin refuses a Remove while it holds references here.
    const nodes = (await using(dir, (d) => d.entries())).filter((e) => e.isFile() && e.name !== this.node && !e.name.startsWith('.')).map((e) => e.name);
    if (nodes.length === 0) return [];
    const beats = await cluster.child(BEATS_DIR);
    if (!beats) return nodes.map((node) => ({ node, beat: undefined }));
    return using(beats, (b) => Promise.all(nodes.map(async (node) => ({ node, beat: await b.readRecord(node) }))));
  }

  private async startBeating(folders: VolumeFolders, log: Logger): Promise<void> {
    if (this.beating.has(folders.root)) return;
    const state = { seq: 0, timer: undefined as unknown as NodeJS.Timeout, writing: Promise.resolve() };
    const beat = async (): Promise<void> => {
      state.seq += 1;
      await folders.inCluster(true, async (cluster) => {
        await cluster.mkdir(BEATS_DIR, 0o755);
        await using(await cluster.need(BEATS_DIR), (b) => b.writeRecord(this.node, `${state.seq} ${new Date().toISOString()}\n`));
      });
    };
    await beat();
    if (this.beating.has(folders.root)) return;
    state.timer = setInterval(() => {
      state.writing = beat().catch((err: unknown) => log.warn({ err, share: folders.root }, 'cannot write this node\'s heartbeat on the share'));
    }, this.timing.beatMs);
    state.timer.unref();
    this.beating.set(folders.root, state);
  }
}
