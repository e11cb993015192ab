/** Fault injection: what a test or a demo asks the emulated cloud to get wrong. */
export interface FaultSpec {
  /** probability that a call is throttled, for every action or per action name */
  throttleRate?: number | Record<string, number>;
  /** probability that a call fails with 500 InternalError or 503 Unavailable */
  serverErrorRate?: number;
  /** true: every attachment sticks in `attaching`; N: the next N do */
  stuckAttach?: boolean | number;
  /** a snapshot takes at least this long to complete */
  slowSnapshotMs?: number;
  /** instances whose OS hangs: IMDS does not answer, tags written on them are lost, volumes do not detach without Force */
  unresponsiveInstances?: string[];
}

export class Faults {
  private spec: FaultSpec = {};

  constructor(spec: FaultSpec = {}) {
    this.set(spec);
  }

  set(spec: FaultSpec): void {
    this.spec = structuredClone(spec);
  }

  get(): FaultSpec {
    return structuredClone(this.spec);
  }

  throttled(action: string): boolean {
    const rate = this.spec.throttleRate;
    const p = typeof rate === 'number' ? rate : (rate?.[action] ?? 0);
    return p > 0 && Math.random() < p;
  }

  serverError(): boolean {
    const p = this.spec.serverErrorRate ?? 0;
    return p > 0 && Math.random() < p;
  }

  /** Whether the attachment being made now should stick; counts down a numeric budget. */
  takeStuckAttach(): boolean {
    const s = this.spec.stuckAttach;
    if (typeof s === 'number') {
      if (s <= 0) return false;
      this.spec.stuckAttach = s - 1;
      return true;
    }
    return s === true;
  }

  get slowSnapshotMs(): number {
    return this.spec.slowSnapshotMs ?? 0;
  }

  unresponsive(instanceId: string): boolean {
    return this.spec.unresponsiveInstances?.includes(instanceId) ?? false;
  }
}

/**
 * The CLI form: `throttle=0.3,5xx=0.1,stuck-attach=1,slow-snapshot=60000,unresponsive=i-…`;
 * `throttle.AttachVolume=0.5` throttles one action; `unresponsive` may repeat.
 */
export function parseFaults(text: string): FaultSpec {
  const spec: FaultSpec = {};
  const rate = (key: string, v: string) => {
    const n = Number(v);
    if (v === '' || !(n >= 0 && n <= 1)) throw new Error(`fault ${key}=${v}: expected a probability between 0 and 1`);
    return n;
  };
  for (const part of text.split(',').filter(Boolean)) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    if (key === 'throttle') spec.throttleRate = rate(key, value);
    else if (key.startsWith('throttle.')) {
      const perAction = typeof spec.throttleRate === 'object' ? spec.throttleRate : {};
      perAction[key.slice('throttle.'.length)] = rate(key, value);
      spec.throttleRate = perAction;
    } else if (key === '5xx') spec.serverErrorRate = rate(key, value);
    else if (key === 'stuck-attach') {
      if (value === '' || value === 'true') spec.stuckAttach = true;
      else if (/^\d+$/.test(value)) spec.stuckAttach = Number(value);
      else throw new Error(`fault stuck-attach=${value}: expected true or a count`);
    } else if (key === 'slow-snapshot') {
      if (!/^\d+$/.test(value)) throw new Error(`fault slow-snapshot=${value}: expected milliseconds`);
      spec.slowSnapshotMs = Number(value);
    } else if (key === 'unresponsive') {
      if (!/^i-[0-9a-f]+$/.test(value)) throw new Error(`fault unresponsive=${value}: expected an instance id`);
      spec.unresponsiveInstances = [...(spec.unresponsiveInstances ?? []), value];
    } else throw new Error(`unknown fault ${key} (known: throttle, throttle.ACTION, 5xx, stuck-attach, slow-snapshot, unresponsive)`);
  }
  return spec;
}
