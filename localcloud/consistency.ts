import type { CloudState } from './state.js';

/**
 * How current the EC2 Describe calls are. `strict` answers the state of now. `eventual` answers,
 * per call, the state of a moment up to `maxLagMs` ago, as EC2 does: "the result of an API command
 * you run that affects your Amazon EC2 resources might not be immediately visible to all subsequent
 * commands" (https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html). A resource
 * made in that window is missing (InvalidVolume.NotFound by id), one deleted in it still shows, and
 * two calls in a row may see time go backwards. Mutating calls always act on the state of now.
 */
export interface ConsistencySpec {
  mode: 'strict' | 'eventual';
  /** eventual: how far back a Describe may look, ms; default 2000 */
  maxLagMs?: number;
  /** eventual: seeds the lag drawn for each call; default unseeded */
  seed?: number;
}

export const DEFAULT_MAX_LAG_MS = 2000;

const LAGGING = ['volumes', 'snapshots', 'instances'] as const;
type Lagging = (typeof LAGGING)[number];

/** The resources as one Describe call sees them. */
export type ReadView = Pick<CloudState, Lagging>;

/** From `at` on, the resource was `json`; without json, it no longer existed. */
interface Version {
  at: number;
  json?: string;
}

/** Every version of each resource that a read may still be shown. */
class History {
  private readonly versions: Record<Lagging, Map<string, Version[]>> = { volumes: new Map(), snapshots: new Map(), instances: new Map() };

  /** What exists when the history starts stands for the whole past. */
  constructor(state: ReadView) {
    this.record(state, -Infinity);
  }

  record(state: ReadView, now: number): void {
    for (const kind of LAGGING) {
      const byId = this.versions[kind];
      const present = new Set<string>();
      for (const r of state[kind]) {
        present.add(r.id);
        const json = JSON.stringify(r);
        const versions = byId.get(r.id);
        if (!versions) byId.set(r.id, [{ at: now, json }]);
        else if (versions[versions.length - 1]!.json !== json) versions.push({ at: now, json });
      }
      for (const [id, versions] of byId) if (!present.has(id) && versions[versions.length - 1]!.json !== undefined) versions.push({ at: now });
    }
  }

  /** Forgets the versions no read from `horizon` on can see. */
  prune(horizon: number): void {
    for (const byId of Object.values(this.versions)) {
      for (const [id, versions] of byId) {
        let valid = 0;
        while (valid + 1 < versions.length && versions[valid + 1]!.at <= horizon) valid++;
        if (valid > 0) {
          versions.splice(0, valid);
          // it stands for its forgotten past too, should a later setting look further back
          versions[0]!.at = -Infinity;
        }
        if (versions.length === 1 && versions[0]!.json === undefined && versions[0]!.at <= horizon) byId.delete(id);
      }
    }
  }

  /** The resources as they were at time t, in the order they were first seen. */
  at(t: number): ReadView {
    const past = <K extends Lagging>(kind: K): ReadView[K] =>
      [...this.versions[kind].values()].flatMap((versions) => {
        let current: Version | undefined;
        for (const v of versions) if (v.at <= t) current = v;
        return current?.json === undefined ? [] : [JSON.parse(current.json)];
      });
    return { volumes: past('volumes'), snapshots: past('snapshots'), instances: past('instances') };
  }
}

/** mulberry32: small, fast, and good enough to spread lags. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The setting with its defaults filled in; throws on anything else, as it may come from the admin API. */
function normalized(spec: ConsistencySpec): ConsistencySpec {
  if (spec.mode === 'strict') {
    if (spec.maxLagMs !== undefined || spec.seed !== undefined) throw new Error('consistency strict takes no maxLagMs or seed');
    return { mode: 'strict' };
  }
  if (spec.mode !== 'eventual') throw new Error(`consistency mode ${String(spec.mode)}: expected strict or eventual`);
  const maxLagMs = spec.maxLagMs ?? DEFAULT_MAX_LAG_MS;
  if (!Number.isInteger(maxLagMs) || maxLagMs < 0) throw new Error(`consistency maxLagMs ${String(spec.maxLagMs)}: expected whole milliseconds`);
  if (spec.seed !== undefined && !Number.isInteger(spec.seed)) throw new Error(`consistency seed ${String(spec.seed)}: expected an integer`);
  return spec.seed === undefined ? { mode: 'eventual', maxLagMs } : { mode: 'eventual', maxLagMs, seed: spec.seed };
}

export class Consistency {
  private spec: ConsistencySpec = { mode: 'strict' };
  private random: () => number = Math.random;
  private history?: History;

  /** `state`: the account as it is now */
  constructor(
    spec: ConsistencySpec,
    private readonly state: () => ReadView,
  ) {
    this.set(spec);
  }

  /** Replaces the setting; a history kept so far stays, so a longer lag can look back at once. */
  set(spec: ConsistencySpec): void {
    this.spec = normalized(spec);
    this.random = this.spec.seed === undefined ? Math.random : seeded(this.spec.seed);
    this.history = this.spec.mode === 'eventual' ? (this.history ?? new History(this.state())) : undefined;
  }

  get(): ConsistencySpec {
    return { ...this.spec };
  }

  /** Called after every change: the versions a later read may be shown. */
  record(now = Date.now()): void {
    if (!this.history) return;
    this.history.record(this.state(), now);
    this.history.prune(now - (this.spec.maxLagMs ?? 0));
  }

  /** What one Describe call sees: the state of now, or of a moment drawn for this call. */
  view(): ReadView {
    if (!this.history) return this.state();
    const now = Date.now();
    // what this call changed before reading (time passing) is part of the present
    this.record(now);
    return this.history.at(now - this.random() * (this.spec.maxLagMs ?? 0));
  }
}

/** The CLI form: `strict`, `eventual` or `eventual=MS`, optionally followed by `,seed=N`. */
export function parseConsistency(text: string): ConsistencySpec {
  if (text === 'strict') return { mode: 'strict' };
  const m = /^eventual(?:=(\d+))?(?:,seed=(-?\d+))?$/.exec(text);
  if (!m) throw new Error(`--consistency ${text}: expected strict or eventual[=MS][,seed=N]`);
  const number = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  return normalized({ mode: 'eventual', maxLagMs: number(m[1]), seed: number(m[2]) });
}
