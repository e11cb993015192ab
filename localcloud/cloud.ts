import { mkdir } from 'node:fs/promises';
import { Consistency, type ConsistencySpec } from './consistency.js';
import { ApiError } from './errors.js';
import { Faults } from './faults.js';
import type { Latency } from './latency.js';
import { Paths } from './paths.js';
import { emptyState, loadState, newId, writeAtomic, type CloudState, type Instance, type Snapshot, type Volume } from './state.js';

/** One action at a time, shared by every region of an emulator: a cross-region copy sees both at rest. */
export class Serial {
  private queue: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

/** One region of the emulated account: its state, where its data lives, and how it misbehaves. */
export class Cloud {
  private saved = '';
  readonly consistency: Consistency;
  /** The other regions of this emulator, for CopySnapshot's source; set by regions.ts. */
  peer: (region: string) => Cloud | undefined = () => undefined;

  private constructor(
    public state: CloudState,
    readonly paths: Paths,
    readonly zones: string[],
    readonly latency: Latency,
    readonly faults: Faults,
    consistency: ConsistencySpec,
    private readonly serial: Serial,
  ) {
    this.saved = JSON.stringify(state);
    this.consistency = new Consistency(consistency, () => this.state);
  }

  static async open(
    paths: Paths,
    region: string,
    zones: string[],
    latency: Latency,
    faults: Faults,
    consistency: ConsistencySpec,
    serial = new Serial(),
  ): Promise<Cloud> {
    for (const d of [paths.volumesDir, paths.snapshotsDir, paths.efsDir]) await mkdir(d, { recursive: true });
    const state = (await loadState(paths.stateFile)) ?? emptyState(region);
    const cloud = new Cloud(state, paths, zones, latency, faults, consistency, serial);
    zones.forEach((zone, i) => {
      if (state.subnets.some((s) => s.zone === zone)) return;
      // default-VPC layout: one /20 per zone
      state.subnets.push({ id: newId('subnet'), zone, zoneId: cloud.zoneId(zone), cidr: `172.31.${i * 16}.0/20` });
    });
    await cloud.save();
    return cloud;
  }

  get region(): string {
    return this.state.region;
  }

  zoneId(zone: string): string {
    const short = this.region.replace(/^([a-z]{2})-([a-z])[a-z]*-(\d+)$/, '$1$2$3');
    return `${short}-az${this.zones.indexOf(zone) + 1}`;
  }

  /** One request or background step at a time: every action sees and leaves a consistent state. */
  serialized<T>(fn: () => Promise<T>): Promise<T> {
    return this.serial.run(fn);
  }

  /** After every request and background step: persists the state and records it for lagging reads. */
  async save(): Promise<void> {
    const text = JSON.stringify(this.state);
    if (text === this.saved) return;
    this.consistency.record();
    await writeAtomic(this.paths.stateFile, text);
    this.saved = text;
  }

  checkZone(zone: string): void {
    if (!this.zones.includes(zone)) throw new ApiError('InvalidParameterValue', `Invalid availability zone: [${zone}]`);
  }

  volume(id: string): Volume {
    const v = this.state.volumes.find((x) => x.id === id);
    if (!v) throw new ApiError('InvalidVolume.NotFound', `The volume '${id}' does not exist.`);
    return v;
  }

  instance(id: string): Instance {
    const i = this.state.instances.find((x) => x.id === id);
    if (!i) throw new ApiError('InvalidInstanceID.NotFound', `The instance ID '${id}' does not exist`);
    return i;
  }

  snapshot(id: string): Snapshot {
    const s = this.state.snapshots.find((x) => x.id === id);
    if (!s) throw new ApiError('InvalidSnapshot.NotFound', `The snapshot '${id}' does not exist.`);
    return s;
  }
}

export const isoNow = (): string => new Date().toISOString();
