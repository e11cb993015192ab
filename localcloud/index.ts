import { chmod, mkdir, realpath } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { requireToken } from './access-token.js';
import type { ConsistencySpec } from './consistency.js';
import type { FaultSpec } from './faults.js';
import { latency, type LatencyMode } from './latency.js';
import { advance, recover, releaseHost } from './lifecycle.js';
import { Paths } from './paths.js';
import { defaultZones, Regions, type RegionSpec } from './regions.js';
import { createLocalcloudServer } from './server.js';

export type { ConsistencySpec } from './consistency.js';
export { DEFAULT_MAX_LAG_MS, parseConsistency } from './consistency.js';
export type { FaultSpec } from './faults.js';
export { parseFaults } from './faults.js';
export type { LatencyMode } from './latency.js';
export type { RegionSpec } from './regions.js';

export interface LocalcloudOptions {
  dir: string;
  /** default 127.0.0.1 */
  host?: string;
  /** default 0: any free port */
  port?: number;
  /** default us-east-1 */
  region?: string;
  /** default `${region}a`, `b`, `c` */
  zones?: string[];
  /**
   * Every region to serve, for disaster-recovery tests; the first takes `region`'s place (and
   * `zones`), the others get zones `a`, `b`, `c`. A request's SigV4 signing region picks its region;
   * EFS and the admin endpoints are the first region's. Default: `[region]`.
   */
  regions?: string[];
  /** default zero */
  latency?: LatencyMode;
  faults?: FaultSpec;
  /** how current EC2 Describe answers are; default strict */
  consistency?: ConsistencySpec;
  /** Serve only requests that carry it (see access-token.ts); default: serve anyone who reaches the port. */
  token?: string;
  /** where background failures go; default one JSON line on stderr */
  onError?: (err: unknown) => void;
}

export interface Localcloud {
  /** http://HOST:PORT, for AWS_ENDPOINT_URL */
  url: string;
  dir: string;
  /** the first region, and its zones */
  region: string;
  zones: string[];
  /** every region served, the first one first */
  regions: RegionSpec[];
  /** devices folder of one instance: `${dir}/devices/${instanceId}` (the plugin's STOWAGE_DEVICE_DIR) */
  deviceDir(instanceId: string): string;
  /** IMDS endpoint for one instance, usable as AWS_EC2_METADATA_SERVICE_ENDPOINT */
  imdsEndpoint(instanceId: string): string;
  /** one region's faults (default: the first region's) */
  setFaults(f: FaultSpec, region?: string): void;
  /** replaces the consistency setting of one region (default: the first); throws on a malformed one */
  setConsistency(c: ConsistencySpec, region?: string): void;
  stop(opts?: { release?: boolean /* default true: detach loop devices it made */ }): Promise<void>;
}

/** How often transitions are applied between API calls, so devices appear without anyone polling. */
const TICK_MS = 200;

const stderrLog = (err: unknown) =>
  process.stderr.write(JSON.stringify({ level: 'error', component: 'localcloud', msg: err instanceof Error ? err.message : String(err) }) + '\n');

export async function startLocalcloud(o: LocalcloudOptions): Promise<Localcloud> {
  await mkdir(o.dir, { recursive: true });
  // volume images, snapshots and EFS folders are for root alone
  await chmod(o.dir, 0o700);
  // the kernel reports loop backing files by their canonical path
  const paths = new Paths(await realpath(resolve(o.dir)));
  const names = o.regions ?? [o.region ?? 'us-east-1'];
  const specs = names.map((name, i) => ({ name, zones: (i === 0 && o.zones) || defaultZones(name) }));
  const onError = o.onError ?? stderrLog;
  const regions = await Regions.open(paths, specs, latency(o.latency ?? 'zero'), o.faults, o.consistency ?? { mode: 'strict' });
  for (const cloud of regions.all) await cloud.serialized(() => recover(cloud));
  const cloudOf = (region: string | undefined) => {
    const cloud = region === undefined ? regions.first : regions.get(region);
    if (!cloud) throw new Error(`localcloud serves no region ${region} (only ${names.join(', ')})`);
    return cloud;
  };

  const server = createLocalcloudServer(regions, onError);
  if (o.token !== undefined) requireToken(server, o.token);
  const host = o.host ?? '127.0.0.1';
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(o.port ?? 0, host, () => ok());
  });
  const url = `http://${host}:${(server.address() as AddressInfo).port}`;
  const ticker = setInterval(() => {
    for (const cloud of regions.all)
      cloud.serialized(async () => {
        await advance(cloud);
        await cloud.save();
      }).catch(onError);
  }, TICK_MS);
  ticker.unref();

  let stopped: Promise<void> | undefined;
  return {
    url,
    dir: paths.dir,
    region: specs[0]!.name,
    zones: specs[0]!.zones,
    regions: specs,
    deviceDir: (id) => paths.deviceDir(id),
    imdsEndpoint: (id) => `${url}/imds/${id}`,
    setFaults: (f, region) => cloudOf(region).faults.set(f),
    setConsistency: (c, region) => cloudOf(region).consistency.set(c),
    stop: (opts) =>
      (stopped ??= (async () => {
        clearInterval(ticker);
        const closed = new Promise<void>((ok) => server.close(() => ok()));
        server.closeAllConnections();
        await closed;
        for (const cloud of regions.all) await cloud.serialized(() => cloud.save());
        if (opts?.release ?? true) await releaseHost(paths.dir);
      })()),
  };
}

/** Releases every loop device and mount made from DIR's volumes and file systems; the state stays. */
export async function cleanLocalcloud(dir: string): Promise<void> {
  await releaseHost(dir);
}
