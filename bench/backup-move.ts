/**
 * Issue 17 item 4: a cold cross-zone move of a volume with a recent backup snapshots only what
 * changed since that backup (EBS snapshots are incremental; localcloud's realistic latency charges
 * a fixed start cost plus the data written since the volume's previous snapshot).
 *
 * Every volume has 1 GiB written; 16 MiB more are written on node A, it is unmounted there, and the
 * Mount on node B (the other zone) starts the moment that Unmount answered: what Swarm does when a
 * task moves. Each case against the warm move (the snapshot on unmount completed long before):
 * - the plugin's default (STOWAGE_SNAPSHOT_ON_UNMOUNT=true), with and without a recent backup: the
 *   Unmount starts a snapshot before its detach, and the move waits for what is left of it;
 * - snapshot on unmount off (or a node lost, which unmounts nothing), with a recent backup: the
 *   Mount must take the snapshot itself, so at least one whole snapshot start cost is added.
 * Goal: with a recent backup, within 1.5× of warm.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { benchContext, benchSnapshots, mean, startBenchCloud, startBenchNode, type BenchCloud, type BenchNode } from './fixture.js';
import { seeded, timedMount, warmUp, WRITTEN_MIB } from './cross-zone.js';
import { printTable, recordResults, runIfMain } from './results.js';

const CHANGED_MIB = 16;
/** The detach a snapshot on unmount overlaps is drawn at random from AWS's range: several rounds, and their mean. */
const ROUNDS = 3;

/** A completed backup of the detached volume: "recent", and missing only what is written after it. */
async function backedUp(cloud: BenchCloud, node: BenchNode, name: string): Promise<void> {
  const { store, reads } = benchSnapshots(cloud, node);
  const step = benchContext(name, 600_000);
  const volume = (await reads.volume(String((await node.driver.get(name, step))!.status.volumeId), step))!;
  const taken = await store.create(volume, 'backup', step);
  await store.waitCompleted(taken.id, step, () => undefined);
}

interface Moved {
  unmountMs: number;
  mountMs: number;
  /** CreateSnapshot calls the Mount on B made itself. */
  snapshots: number;
}

/** CHANGED_MIB written on `a`, unmounted there, then mounted on `b` as soon as the Unmount answered. */
async function changedThenMoved(a: BenchNode, b: BenchNode, name: string): Promise<Moved> {
  const mp = await a.driver.mount(name, benchContext(name));
  execFileSync('dd', ['if=/dev/urandom', `of=${path.join(mp, 'changed.bin')}`, 'bs=4M', `count=${CHANGED_MIB / 4}`, 'conv=fsync', 'status=none']);
  const started = Date.now();
  await a.driver.unmount(name, benchContext(name, 300_000));
  const unmountMs = Date.now() - started;
  const moved = await timedMount(b, name);
  return { unmountMs, mountMs: moved.ms, snapshots: moved.snapshots };
}

export async function main(): Promise<void> {
  const cloud = await startBenchCloud('realistic');
  try {
    const [zoneA, zoneB] = cloud.lc.zones as [string, string];
    // Two nodes in zone A: one as the plugin runs by default, one with snapshot on unmount off.
    const aDefault = await startBenchNode(cloud, zoneA, 500, { snapshotOnUnmount: true });
    const aOff = await startBenchNode(cloud, zoneA, 500);
    const b = await startBenchNode(cloud, zoneB, 500);
    const rounds = (prefix: string) => Array.from({ length: ROUNDS }, (_, i) => `${prefix}-${i}`);
    const [withBackup, withBackupOff, warm] = [rounds('backup'), rounds('backup-off'), rounds('warm')];
    for (const name of ['no-backup', ...withBackup, ...withBackupOff, ...warm]) await seeded(aOff, name);
    await Promise.all([...[...withBackup, ...withBackupOff].map((name) => backedUp(cloud, aOff, name)), ...warm.map((name) => warmUp(cloud, aOff, name))]);

    const noBackup = await changedThenMoved(aDefault, b, 'no-backup');
    const backupRounds: Moved[] = [];
    const offRounds: Moved[] = [];
    const warmRounds: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      backupRounds.push(await changedThenMoved(aDefault, b, withBackup[round]!));
      offRounds.push(await changedThenMoved(aOff, b, withBackupOff[round]!));
      warmRounds.push((await timedMount(b, warm[round]!)).ms);
    }
    const warmMs = mean(warmRounds);
    const backupMs = mean(backupRounds.map((m) => m.mountMs));
    const offMs = mean(offRounds.map((m) => m.mountMs));
    const ratio = (ms: number) => Number((ms / warmMs).toFixed(2));
    const snapshotsOnB = backupRounds.reduce((n, m) => n + m.snapshots, 0);
    printTable(`cross-zone Mount right after the Unmount, ${WRITTEN_MIB} MiB written, ${CHANGED_MIB} MiB since the last backup, localcloud realistic latencies`, [
      [`warm (snapshot on unmount completed) ms, mean of ${ROUNDS}`, warmMs],
      ['default, no backup: Mount ms', noBackup.mountMs],
      [`default, recent backup: Mount ms, mean of ${ROUNDS}`, backupMs],
      ['default, recent backup / warm', ratio(backupMs), '≤ 1.5'],
      [`default, recent backup: CreateSnapshot calls of the ${ROUNDS} Mounts`, snapshotsOnB, '0'],
      [`snapshot on unmount off, recent backup: Mount ms, mean of ${ROUNDS}`, offMs],
      ['snapshot on unmount off, recent backup / warm', ratio(offMs)],
      ['default, no backup / warm', ratio(noBackup.mountMs)],
      [`Unmount on A ms: default with backup / off with backup, means of ${ROUNDS}`, `${mean(backupRounds.map((m) => m.unmountMs))} / ${mean(offRounds.map((m) => m.unmountMs))}`],
      // What the task waits in all: time an Unmount spends on the snapshot's start is not hidden in it.
      [`Unmount on A + Mount on B ms: default with backup / off with backup, means of ${ROUNDS}`, `${mean(backupRounds.map((m) => m.unmountMs + m.mountMs))} / ${mean(offRounds.map((m) => m.unmountMs + m.mountMs))}`],
    ]);
    await recordResults('backupMove', {
      writtenMiB: WRITTEN_MIB, changedMiB: CHANGED_MIB, rounds: ROUNDS, warmMs, warmRounds,
      noBackup, backupRounds, offRounds, backupMs, offMs,
      backedUpOverWarm: ratio(backupMs), offOverWarm: ratio(offMs), noBackupOverWarm: ratio(noBackup.mountMs), snapshotsOnB,
    });
  } finally {
    await cloud.close();
  }
}

runIfMain(import.meta.url, main);
