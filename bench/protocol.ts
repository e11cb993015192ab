/**
 * Protocol throughput: Get, Path and List (1,000 volumes) over the plugin's unix socket with
 * autocannon, next to a bare node:http server answering the very same bytes on another unix socket.
 * The ratio is the plugin's protocol layer (node:http, validation, VolumeService, refcounts) against
 * the least any server must do. The load runs in a worker thread, so the server has its own event
 * loop; both servers get the same treatment.
 */
import autocannon from 'autocannon';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Driver, VolumeInfo } from '../drivers/driver.js';
import { loadConfig } from '../plugin/config.js';
import { UnsupportedError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { startPlugin } from '../plugin/main.js';
import { parseOptions } from '../plugin/options/parse.js';
import { printTable, recordResults, runIfMain } from './results.js';

const VOLUMES = 1000;
const DURATION_S = 3;
/** Plugin and bare server take turns; each keeps its best round, so a noisy neighbour's burst does not decide the ratio. */
const ROUNDS = 3;
const CONNECTIONS = 10;
const CONTENT_TYPE = 'application/vnd.docker.plugins.v1.2+json';
const OPTIONS = parseOptions({ backing: 'relocatable', size: '1' }, 'relocatable').options;

/**
 * A cluster of 1,000 relocatable volumes as the EBS driver's warm cache shows them; nothing mounts.
 * `changing`: every List finds every volume changed (new objects, as after a catalog refresh in
 * which all of them moved), so the plugin can reuse nothing it serialized before: the worst case.
 */
class CatalogDriver implements Driver {
  readonly backing = 'relocatable' as const;
  private readonly volumes = new Map<string, VolumeInfo>();

  constructor(count: number, private readonly changing = false) {
    for (let i = 0; i < count; i++) {
      const name = `vol-${String(i).padStart(4, '0')}`;
      this.volumes.set(name, {
        name, backing: 'relocatable', createdAt: '2026-11-26T07:00:00.000Z', options: OPTIONS,
        status: { backing: 'relocatable', volumeId: `vol-0${i.toString(16).padStart(16, '0')}`, zone: 'us-east-1a', size: 1, type: 'gp3', state: 'available', generation: 1, fs: 'ext4', encrypted: true },
      });
    }
  }
  async get(name: string) { return this.volumes.get(name); }
  async list() {
    const all = [...this.volumes.values()];
    return this.changing ? all.map((v) => ({ ...v, status: { ...v.status } })) : all;
  }
  mountpointOf(name: string) { return `/mnt/stowage/${name}`; }
  async create(): Promise<void> { throw new UnsupportedError('read-only bench driver'); }
  async remove(): Promise<void> { throw new UnsupportedError('read-only bench driver'); }
  async mount(): Promise<string> { throw new UnsupportedError('read-only bench driver'); }
  async unmount(): Promise<void> { throw new UnsupportedError('read-only bench driver'); }
  async isMounted(): Promise<boolean> { return false; }
}

interface Load {
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

/** The round with the most requests per second. */
function bestOf(rounds: Load[]): Load {
  return rounds.reduce((best, r) => (r.requestsPerSec > best.requestsPerSec ? r : best));
}

async function load(socketPath: string, route: string, body: string): Promise<Load> {
  const result = await autocannon({
    url: `http://localhost${route}`, socketPath, method: 'POST', body, workers: 1,
    headers: { 'content-type': 'application/json', accept: CONTENT_TYPE },
    connections: CONNECTIONS, duration: DURATION_S,
  });
  return {
    requestsPerSec: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.non2xx,
  };
}

function post(socketPath: string, route: string, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, path: route, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${route}: ${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Answers each route with fixed, already encoded bytes: what any server on this socket must at least do. */
async function bareServer(socketPath: string, answers: Map<string, Buffer>): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': `${CONTENT_TYPE}; charset=utf-8` });
      res.end(answers.get(req.url ?? '') ?? '{"Err":"unknown"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return server;
}

export async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-bench-protocol-'));
  const devNull = createWriteStream('/dev/null');
  const config = loadConfig({ STOWAGE_SOCKET: path.join(dir, 'plugin.sock'), STOWAGE_STATE_DIR: path.join(dir, 'state'), STOWAGE_DEFAULT_BACKING: 'relocatable' });
  // The plugin's own logger at its default level, into /dev/null: its cost is part of the figure.
  const plugin = await startPlugin({ config, drivers: [new CatalogDriver(VOLUMES)], log: createLogger('info', devNull), isMounted: async () => false });
  const changingConfig = { ...config, socket: path.join(dir, 'changing.sock'), stateDir: path.join(dir, 'changing-state') };
  const changing = await startPlugin({ config: changingConfig, drivers: [new CatalogDriver(VOLUMES, true)], log: createLogger('info', devNull), isMounted: async () => false });
  const bareSocket = path.join(dir, 'bare.sock');
  const requests: Array<{ key: string; label: string; socket: string; route: string; body: string; target?: string; ratioTarget?: string }> = [
    { key: 'Get', label: 'Get', socket: config.socket, route: '/VolumeDriver.Get', body: JSON.stringify({ Name: 'vol-0500' }) },
    { key: 'Path', label: 'Path', socket: config.socket, route: '/VolumeDriver.Path', body: JSON.stringify({ Name: 'vol-0500' }) },
    { key: 'List', label: `List (${VOLUMES} volumes)`, socket: config.socket, route: '/VolumeDriver.List', body: '{}', target: 'p99 target <= 20 ms' },
    { key: 'ListChanged', label: `List (${VOLUMES}, all changed)`, socket: changingConfig.socket, route: '/VolumeDriver.List', body: '{}', ratioTarget: 'worst case, no target' },
  ];
  const answers = new Map<string, Buffer>();
  for (const { socket, route, body } of requests) answers.set(route, Buffer.from(await post(socket, route, body)));
  const bare = await bareServer(bareSocket, answers);
  try {
    const figures: Record<string, unknown> = {};
    const rows: Array<[string, string | number, string?]> = [];
    for (const { key, label, socket, route, body, target, ratioTarget = 'target >= 50%' } of requests) {
      const pluginRounds: Load[] = [];
      const bareRounds: Load[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        pluginRounds.push(await load(socket, route, body));
        bareRounds.push(await load(bareSocket, route, body));
      }
      const ours = bestOf(pluginRounds);
      const least = bestOf(bareRounds);
      const ratio = Math.round((100 * ours.requestsPerSec) / least.requestsPerSec);
      figures[key] = { plugin: ours, bare: least, ratioPercent: ratio, replyBytes: answers.get(route)!.length, pluginRounds, bareRounds };
      rows.push(
        [`${label}: plugin req/s`, ours.requestsPerSec],
        [`${label}: bare node:http req/s`, least.requestsPerSec],
        [`${label}: plugin / bare`, `${ratio}%`, ratioTarget],
        [`${label}: plugin p50 / p99 ms`, `${ours.p50Ms} / ${ours.p99Ms}`, target],
        [`${label}: bare p50 / p99 ms`, `${least.p50Ms} / ${least.p99Ms}`],
      );
      if ([...pluginRounds, ...bareRounds].some((r) => r.errors > 0)) throw new Error(`${label}: ${ours.errors} plugin and ${least.errors} bare requests failed`);
    }
    printTable(`Protocol over the unix socket (autocannon, ${CONNECTIONS} connections, best of ${ROUNDS} rounds of ${DURATION_S} s)`, rows);
    await recordResults('protocol', { volumes: VOLUMES, connections: CONNECTIONS, durationS: DURATION_S, rounds: ROUNDS, loadAverage: os.loadavg()[0], ...figures });
  } finally {
    await new Promise<void>((resolve) => bare.close(() => resolve()));
    await plugin.close();
    await changing.close();
    devNull.end();
    await rm(dir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, main);
