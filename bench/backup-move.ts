/**
 * Issue 17 item 4: a cold cross-zone move of a volume with a recent backup snapshots only what
 * changed since that backup (EBS snapshots are incremental; localcloud's realistic latency charges
 * by the data written since the volume's previous snapshot). A volume with 1 GiB written and
 * 16 MiB written since its last backup, moved cold, against the same move without backups and
 * against the warm move (snapshot on unmount completed). Goal: with a backup, within 1.5× of warm.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { SnapshotStore } from '../snapshot/snapshot-store.js';
import { benchContext, CLUSTER, startBenchCloud, startBenchNode, type BenchCloud, type BenchNode } from './fixture.js';
import { seeded, timedMount, warmUp, WRITTEN_MIB } from './cross-zone.js';
import { printTable, recordResults, runIfMain } from './results.js';

const CHANGED_MIB = 16;
const WARM_ROUNDS = 3;

const mean = (values: number[]) => Math.round(values.reduce((a, b) => a + b, 0) / values.length);

/** A completed backup of the detached volume, then CHANGED_MIB more written: a "recent backup" that misses the last writes. */
async function backedUpThenChanged(cloud: BenchCloud, a: BenchNode, name: string): Promise<void> {
  const store = new SnapshotStore({ ec2: cloud.ec2, counter: a.counter, cluster: CLUSTER, pollInitialMs: 500 });
  const step = benchContext(name, 600_000);
  const info = (await a.driver.get(name, step))!;
  const taken = await store.create({ id: String(info.status.volumeId), name, generation: Number(info.status.generation), lastAttach: undefined } as never, 'backup', step);
  await store.waitCompleted(taken.id, step, () => undefined);
  const mp = await a.driver.mount(name, step);
  execFileSync('dd', ['if=/dev/urandom', `of=${path.join(mp, 'changed.bin')}`, 'bs=4M', `count=${CHANGED_MIB / 4}`, 'conv=fsync', 'status=none']);
  await a.driver.unmount(name, benchContext(name, 300_000));
}

export async function main(): Promise<void> {
  const cloud = await startBenchCloud('realistic');
  try {
    const [zoneA, zoneB] = cloud.lc.zones as [string, string];
    const a = await startBenchNode(cloud, zoneA, 500);
    const b = await startBenchNode(cloud, zoneB, 500);
    const warmNames = Array.from({ length: WARM_ROUNDS }, (_, i) => `warm-${i}`);
    for (const name of ['no-backup', 'backed-up', ...warmNames]) await seeded(a, name);
    await backedUpThenChanged(cloud, a, 'backed-up');
    await Promise.all(warmNames.map((name) => warmUp(cloud, a, name)));

    const backedUp = await timedMount(b, 'backed-up');
    const noBackup = await timedMount(b, 'no-backup');
    const warmRounds: number[] = [];
    for (const name of warmNames) warmRounds.push((await timedMount(b, name)).ms);
    const warmMs = mean(warmRounds);
    const ratio = (ms: number) => Number((ms / warmMs).toFixed(2));
    printTable(`cold cross-zone Mount, ${WRITTEN_MIB} MiB written, ${CHANGED_MIB} MiB since the last backup, localcloud realistic latencies`, [
      ['cold, no backup ms', noBackup.ms],
      ['cold, recent backup ms', backedUp.ms],
      [`warm (snapshot on unmount) ms, mean of ${WARM_ROUNDS}`, warmMs],
      ['cold no backup / warm', ratio(noBackup.ms)],
      ['cold with backup / warm', ratio(backedUp.ms), '≤ 1.5'],
    ]);
    await recordResults('backupMove', {
      writtenMiB: WRITTEN_MIB, changedMiB: CHANGED_MIB, noBackupMs: noBackup.ms, backedUpMs: backedUp.ms, warmMs, warmRounds,
      noBackupOverWarm: ratio(noBackup.ms), backedUpOverWarm: ratio(backedUp.ms),
    });
  } finally {
    await cloud.close();
  }
}

runIfMain(import.meta.url, main);
