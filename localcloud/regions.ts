import { Cloud, Serial } from './cloud.js';
import type { ConsistencySpec } from './consistency.js';
import { ApiError } from './errors.js';
import { Faults, type FaultSpec } from './faults.js';
import type { Latency } from './latency.js';
import type { Paths } from './paths.js';

/** One region an emulator serves and its availability zones. */
export interface RegionSpec {
  name: string;
  zones: string[];
}

/** `us-west-2` → `us-west-2a`, `b`, `c`. */
export function defaultZones(region: string): string[] {
  return ['a', 'b', 'c'].map((s) => `${region}${s}`);
}

/**
 * The region a SigV4 `Authorization` header is signed for: its credential scope
 * (`Credential=AKID/20240101/us-west-2/ec2/aws4_request`). undefined when unsigned.
 */
export function signingRegion(authorization: string | undefined): string | undefined {
  return /Credential=[^/,\s]+\/\d{8}\/([^/,\s]+)\//.exec(authorization ?? '')?.[1];
}

/**
 * Every region of one emulator, each a Cloud of its own (state, volumes, snapshots, ids, ARNs),
 * the first in the emulator's folder as a one-region emulator keeps it, the others under
 * `regions/<name>/`. They share one action queue, so a cross-region copy sees both at rest.
 */
export class Regions {
  private readonly byName: Map<string, Cloud>;

  private constructor(readonly all: Cloud[]) {
    this.byName = new Map(all.map((c) => [c.region, c]));
    for (const c of all) c.peer = (region) => this.byName.get(region);
  }

  static async open(paths: Paths, specs: RegionSpec[], latency: Latency, faults: FaultSpec | undefined, consistency: ConsistencySpec): Promise<Regions> {
    if (specs.length === 0) throw new Error('localcloud: at least one region');
    const names = specs.map((s) => s.name);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice) throw new Error(`localcloud: region ${twice} is named twice`);
    const serial = new Serial();
    const clouds: Cloud[] = [];
    for (const [i, spec] of specs.entries()) {
      const where = i === 0 ? paths : paths.forRegion(spec.name);
      clouds.push(await Cloud.open(where, spec.name, spec.zones, latency, new Faults(faults), consistency, serial));
    }
    return new Regions(clouds);
  }

  /** Serves EFS, the admin endpoints and unsigned requests. */
  get first(): Cloud {
    return this.all[0]!;
  }

  get(region: string): Cloud | undefined {
    return this.byName.get(region);
  }

  /** The region a request is signed for; one the emulator does not serve is refused as EC2 refuses it. */
  forRequest(authorization: string | undefined): Cloud {
    const region = signingRegion(authorization);
    if (region === undefined) return this.first;
    const cloud = this.byName.get(region);
    if (!cloud)
      throw new ApiError('AuthFailure', `Credential should be scoped to a valid region, not '${region}'. This localcloud serves: ${[...this.byName.keys()].join(', ')}.`, 401);
    return cloud;
  }

  /** The cloud of an instance id, whichever region it runs in (IMDS answers by instance). */
  ofInstance(instanceId: string): Cloud | undefined {
    return this.all.find((c) => c.state.instances.some((i) => i.id === instanceId));
  }
}
