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
  /** A modification's `modifying` stage; the new size is usable after it. */
  modifyVolume(): number;
  /** A modification's `optimizing` stage, for a volume of `gib` GiB. */
  optimizeVolume(gib: number): number;
  /** Loading the blocks of a volume restored from a snapshot of `bytes`, at `rateMiBs` when provisioned. */
  initializeVolume(bytes: number, rateMiBs: number | undefined): number;
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
      optimizeVolume: none,
      // A provisioned rate is what the parameter buys: kept even here, so its status can be watched.
      initializeVolume: (bytes, rate) => (rate ? (bytes / (rate * 1024 * 1024)) * 1000 : 0),
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
    // AWS gives no figure for `optimizing` beyond "minutes to hours, longer for large volumes";
    // half a minute plus a second per GiB is an assumption of ours, not a measurement.
    optimizeVolume: (gib) => 30_000 + gib * 1000,
    // The provisioned rate (100–300 MiB/s) is EBS's promise; without one EBS loads blocks on first
    // touch at no published rate: 30 MiB/s here is an assumption.
    initializeVolume: (bytes, rate) => (bytes / ((rate ?? 30) * 1024 * 1024)) * 1000,
    snapshot: (bytes) => 3000 + (bytes / (40 * 1024 * 1024)) * 1000,
    // AWS publishes no figure for a standard (best-effort) copy to another region; a minute before
    // anything moves and about 20 MiB/s after it is what small copies show, incremental after the first
    copySnapshot: (bytes) => 60_000 + (bytes / (20 * 1024 * 1024)) * 1000,
    efsResource: between(2000, 5000),
  };
}
