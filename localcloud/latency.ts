/**
 * How long transitions take. `zero` still goes through every intermediate state: the answer to a
 * call shows the transient state and the next call sees the settled one, so waiters are exercised.
 */
export type LatencyMode = 'zero' | 'realistic';

export interface Latency {
  instanceStart(): number;
  instanceStop(): number;
  createVolume(): number;
  attach(): number;
  detach(): number;
  deleteVolume(): number;
  modifyVolume(): number;
  /** bytes: data written to the volume since its previous snapshot */
  snapshot(bytes: number): number;
  /** bytes: data of the source snapshot not yet in the destination region (a first copy is whole) */
  copySnapshot(bytes: number): number;
  efsResource(): number;
}

const between = (lo: number, hi: number) => () => lo + Math.random() * (hi - lo);

export function latency(mode: LatencyMode): Latency {
  if (mode === 'zero') {
    const none = () => 0;
    return {
      instanceStart: none,
      instanceStop: none,
      createVolume: none,
      attach: none,
      detach: none,
      deleteVolume: none,
      modifyVolume: none,
      snapshot: none,
      copySnapshot: none,
      efsResource: none,
    };
  }
  // figures observed on gp3 in us-east-1; snapshots copy roughly 40 MiB/s after a fixed start cost
  return {
    instanceStart: between(8000, 15000),
    instanceStop: between(5000, 10000),
    createVolume: between(1000, 2000),
    attach: between(1000, 4000),
    detach: between(1000, 4000),
    deleteVolume: between(500, 1500),
    modifyVolume: between(5000, 10000),
    snapshot: (bytes) => 3000 + (bytes / (40 * 1024 * 1024)) * 1000,
    // AWS publishes no figure for a standard (best-effort) copy to another region; a minute before
    // anything moves and about 20 MiB/s after it is what small copies show, incremental after the first
    copySnapshot: (bytes) => 60_000 + (bytes / (20 * 1024 * 1024)) * 1000,
    efsResource: between(2000, 5000),
  };
}
