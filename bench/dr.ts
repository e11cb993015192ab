/**
 * Disaster recovery on localcloud with realistic latencies, two regions: a database volume in
 * us-east-1 with backups every BACKUP_INTERVAL, each copied to us-west-2 as it completes. Once a copy
 * is there and more is written, us-east-1 is lost (every call there fails, its node is gone). Then,
 * as an operator would: `stowage restore db --region us-west-2`, and a Mount by name on a node of the
 * standby Swarm in us-west-2 (running before the loss, as a standby is). Measured: the time from the
 * loss to the volume mounted there, by stage, and the RPO at the loss (the age of the data in the
 * newest completed copy: what the restore cannot bring back).
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { RegionalEc2 } from '../aws/regional-clients.js';
import { runOpsCommand } from '../cli/ops/command.js';
import { restoreInDrRegion } from '../cli/ops/dr-restore.js';
import { delay } from '../core/delay.js';
import { silentLogger } from '../core/log.js';
import { startLocalcloud } from '../localcloud/index.js';
import { parseOptions } from '../plugin/options/parse.js';
import { drCopiesOf } from '../snapshot/dr-copy.js';
import { callAws } from '../aws/call.js';
import { CallCounter } from '../aws/call-counter.js';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { benchContext, CLUSTER, startBenchNode, type BenchCloud } from './fixture.js';
import { printTable, recordResults, runIfMain } from './results.js';

const BACKUP_INTERVAL = '30s';
const WRITTEN_MIB = 256;
const CHANGED_AFTER_MIB = 16;
const CREDENTIALS = { accessKeyId: 'bench', secretAccessKey: 'bench' };

export async function main(): Promise<void> {
  process.env.AWS_ACCESS_KEY_ID ??= CREDENTIALS.accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY ??= CREDENTIALS.secretAccessKey;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stowage-bench-dr-'));
  const lc = await startLocalcloud({ dir, latency: 'realistic', regions: ['us-east-1', 'us-west-2'] });
  const regional = new RegionalEc2({ endpointUrl: lc.url, credentials: CREDENTIALS });
  // A view of the one emulator from each region: its requests are signed for that region.
  const cloudIn = (region: string): BenchCloud => ({ lc: { ...lc, region }, ec2: regional.get(region), dir, close: async () => undefined });
  try {
    const counter = new CallCounter();
    const east = await startBenchNode(cloudIn('us-east-1'), 'us-east-1a', 500, {
      backups: { tickMs: 1000, drCopy: { ec2In: (r) => regional.get(r), counter, cluster: CLUSTER, sourceRegion: 'us-east-1' } },
    });
    east.driver.start();
    const standby = await startBenchNode(cloudIn('us-west-2'), 'us-west-2a', 500);
    standby.driver.start();

    const options = parseOptions({ backing: 'relocatable', size: '2', backup: BACKUP_INTERVAL, drregion: 'us-west-2' }, 'relocatable', undefined, { backupMinIntervalMs: 1000 }).options;
    await east.driver.create('db', options, benchContext('db'));
    const mp = await east.driver.mount('db', benchContext('db'));
    execFileSync('dd', ['if=/dev/urandom', `of=${path.join(mp, 'data.bin')}`, 'bs=4M', `count=${WRITTEN_MIB / 4}`, 'conv=fsync', 'status=none']);
    const written = Date.now();

    const aws = <T>(operation: string, send: () => Promise<T>) => callAws(counter, operation, send, { deadline: Date.now() + 60_000, log: silentLogger });
    const west = regional.get('us-west-2');
    const newestCopy = async () => (await drCopiesOf(west, CLUSTER, 'db', aws)).find((c) => c.state === 'completed' && c.takenAt > written);
    for (;;) {
      if (await newestCopy()) break;
      await delay(2000);
    }
    const firstCopyAfterWriteMs = Date.now() - written;
    // the database goes on writing after the copy it will be restored from
    execFileSync('dd', ['if=/dev/urandom', `of=${path.join(mp, 'late.bin')}`, 'bs=4M', `count=${CHANGED_AFTER_MIB / 4}`, 'conv=fsync', 'status=none']);

    // us-east-1 is lost
    const lostAt = Date.now();
    await east.driver.stop();
    lc.setFaults({ serverErrorRate: 1 }, 'us-east-1');
    const copy = (await newestCopy())!;
    const rpoMs = lostAt - copy.takenAt;

    const out = new PassThrough();
    let stdout = '';
    out.on('data', (d: Buffer) => (stdout += d.toString()));
    const restoreStart = Date.now();
    const code = await runOpsCommand(
      { name: 'restore', usage: '', flags: {}, positionals: 1, run: (c, args) => restoreInDrRegion(c, args.positionals[0]!, undefined) },
      ['db', '--region', 'us-west-2', '--endpoint', lc.url, '--json'],
      { stdout: out, stderr: new PassThrough(), env: { STOWAGE_CLUSTER: CLUSTER, STOWAGE_STATE_DIR: path.join(dir, 'no-plugin') }, signal: new AbortController().signal },
    );
    if (code !== 0) throw new Error(`stowage restore exited ${code}`);
    const restoreMs = Date.now() - restoreStart;
    const mountStart = Date.now();
    await standby.driver.mount('db', benchContext('db'));
    const mountedAt = Date.now();
    const zone = (JSON.parse(stdout) as { zone: string }).zone;

    const figures = {
      backupInterval: BACKUP_INTERVAL,
      writtenMiB: WRITTEN_MIB,
      changedAfterCopyMiB: CHANGED_AFTER_MIB,
      firstCopyAfterWriteMs,
      lossToMountedMs: mountedAt - lostAt,
      restoreMs,
      mountMs: mountedAt - mountStart,
      rpoMs,
      restoredZone: zone,
    };
    printTable('DR: us-east-1 lost → database volume mounted in us-west-2, localcloud realistic latencies', [
      [`backup interval; MiB written before the copy`, `${BACKUP_INTERVAL}; ${WRITTEN_MIB}`],
      ['write → first completed DR copy holding it, ms', firstCopyAfterWriteMs],
      ['loss → mounted in us-west-2, ms (RTO)', figures.lossToMountedMs],
      ['  stowage restore --region (CreateVolume + available), ms', restoreMs],
      ['  Mount by name on the standby node, ms', figures.mountMs],
      ['RPO at the loss (age of the newest copy\'s data), ms', rpoMs],
    ]);
    await recordResults('dr', figures);
  } finally {
    regional.destroy();
    await lc.stop({ release: true });
    await rm(dir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, main);
