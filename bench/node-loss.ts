/**
 * Node loss on localcloud with realistic latencies: the instance holding two mounted relocatable
 * volumes hangs (fault `unresponsive`: its heartbeat tags are lost, its volumes do not detach
 * without Force). With STOWAGE_FENCE_AFTER=60s, another node in the same zone mounts one volume and
 * a node in the other zone the other, each retrying as Swarm does until its Mount succeeds with the
 * data. Printed: the time from the hang to that Mount, and each stage's share: the holder judged
 * stale (the judge watches the heartbeat stay unchanged for 60 s on its own clock), the forced
 * detach, the cross-zone move's stages, the attach, the device and mount. Swarm's own delay in
 * noticing the node and rescheduling its tasks is not included: both Mounts start at the hang.
 */
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { delay } from '../core/delay.js';
import { StowageError } from '../core/errors.js';
import type { StageOutcome, WorkMetrics } from '../core/metrics.js';
import { createLinuxHost } from '../host/linux-host.js';
import { parseOptions } from '../plugin/options/parse.js';
import { benchContext, startBenchCloud, startBenchNode, type BenchCloud, type BenchNode } from './fixture.js';
import { printTable, recordResults, runIfMain } from './results.js';

const OPTIONS = parseOptions({ backing: 'relocatable', size: '2' }, 'relocatable').options;
const FENCE_AFTER_MS = 60_000;
const WRITTEN_MIB = 1024;
/** STOWAGE_MOUNT_TIMEOUT's default: a Mount answers by then, and Swarm starts the task again. */
const MOUNT_ANSWER_MS = 100_000;
/** Swarm's restart delay after a failed task. */
const SWARM_RESTART_MS = 5000;
const GIVE_UP_MS = 15 * 60_000;

/** When each stage of one node's takeover ended, from the driver's own work metrics. */
class StageClock implements WorkMetrics {
  fencedAt: number | undefined;
  attachStartedAt: number | undefined;
  attachEndedAt: number | undefined;
  readonly moves: { stage: string; startedAt: number; endedAt: number; outcome: StageOutcome }[] = [];

  moveStage(stage: string, seconds: number, outcome: StageOutcome): void {
    const endedAt = Date.now();
    this.moves.push({ stage, startedAt: endedAt - seconds * 1000, endedAt, outcome });
  }

  attachStarted(): () => void {
    this.attachStartedAt ??= Date.now();
    return () => (this.attachEndedAt ??= Date.now());
  }

  fenced(): void {
    this.fencedAt ??= Date.now();
  }
}

interface Taker {
  node: BenchNode;
  clock: StageClock;
}

/** A mounted volume with WRITTEN_MIB written and a random proof file whose digest is returned. */
async function heldWithData(holder: BenchNode, name: string): Promise<string> {
  await holder.driver.create(name, OPTIONS, benchContext(name));
  const mp = await holder.driver.mount(name, benchContext(name));
  execFileSync('dd', ['if=/dev/zero', `of=${path.join(mp, 'data.bin')}`, 'bs=4M', `count=${WRITTEN_MIB / 4}`, 'conv=fsync', 'status=none']);
  const proof = randomBytes(1 << 20);
  await writeFile(path.join(mp, 'proof.bin'), proof);
  execFileSync('sync');
  return createHash('sha256').update(proof).digest('hex');
}

/** Mount as dockerd and Swarm do: each answer within MOUNT_ANSWER_MS; a retryable refusal is tried again after the restart delay. */
async function mountLikeSwarm(node: BenchNode, name: string): Promise<{ mountpoint: string; answers: number; doneAt: number }> {
  const giveUpAt = Date.now() + GIVE_UP_MS;
  for (let answers = 1; ; answers++) {
    try {
      const mountpoint = await node.driver.mount(name, benchContext(name, MOUNT_ANSWER_MS));
      return { mountpoint, answers, doneAt: Date.now() };
    } catch (err) {
      if (!(err instanceof StowageError) || !err.retryable || Date.now() > giveUpAt) throw err;
      process.stdout.write(`  ${name}: Mount answered "${err.message.slice(0, 140)}"; again in ${SWARM_RESTART_MS / 1000} s\n`);
      await delay(SWARM_RESTART_MS);
    }
  }
}

const seconds = (from: number | undefined, to: number | undefined) => (from === undefined || to === undefined ? NaN : Number(((to - from) / 1000).toFixed(1)));

/** The takeover's stages in order, as seconds; what did not happen is left out. */
function stagesOf(t: Taker, hungAt: number, doneAt: number): Array<[string, number]> {
  const { fencedAt, attachStartedAt, attachEndedAt, moves } = t.clock;
  const detachEnd = moves[0]?.startedAt ?? attachStartedAt;
  return [
    ['holder judged stale (heartbeat unchanged 60 s)', seconds(hungAt, fencedAt)],
    ['force-detach', seconds(fencedAt, detachEnd)],
    ...moves.map((m): [string, number] => [`move: ${m.stage}${m.outcome === 'ok' ? '' : ' (failed)'}`, seconds(m.startedAt, m.endedAt)]),
    ['attach', seconds(attachStartedAt, attachEndedAt)],
    ['device, fsck, mount', seconds(attachEndedAt, doneAt)],
  ];
}

async function takeOver(t: Taker, name: string, digest: string, hungAt: number) {
  const { mountpoint, answers, doneAt } = await mountLikeSwarm(t.node, name);
  const proof = await readFile(path.join(mountpoint, 'proof.bin'));
  const intact = createHash('sha256').update(proof).digest('hex') === digest;
  await t.node.driver.unmount(name, benchContext(name, 300_000));
  return { totalS: seconds(hungAt, doneAt), answers, intact, stages: stagesOf(t, hungAt, doneAt) };
}

/** The hung holder never unmounts: its mounts go lazily before the emulator releases the loops. */
async function unmountAll(cloud: BenchCloud): Promise<void> {
  const host = createLinuxHost({ deviceDir: cloud.dir });
  for (const m of await host.mounts()) {
    if (m.target.startsWith(path.join(cloud.dir, 'mnt'))) await host.unmount(m.target, { timeoutMs: 5000, lazyAfterTimeout: true }).catch(() => undefined);
  }
}

export async function main(): Promise<void> {
  const cloud = await startBenchCloud('realistic');
  const nodes: BenchNode[] = [];
  try {
    const [zoneA, zoneB] = cloud.lc.zones as [string, string];
    const start = async (zone: string, clock?: StageClock) => {
      const node = await startBenchNode(cloud, zone, 500, { fenceAfterMs: FENCE_AFTER_MS, ...(clock && { metrics: clock }) });
      node.driver.start(); // the heartbeat: without one a holder is never fenced
      nodes.push(node);
      return node;
    };
    const holder = await start(zoneA);
    const same: Taker = { clock: new StageClock(), node: undefined as never };
    const other: Taker = { clock: new StageClock(), node: undefined as never };
    [same.node, other.node] = await Promise.all([start(zoneA, same.clock), start(zoneB, other.clock)]);
    const [sameDigest, otherDigest] = await Promise.all([heldWithData(holder, 'loss-same'), heldWithData(holder, 'loss-other')]);
    // A few beats on record, as on a cluster that has run a while.
    await delay(2000);

    cloud.lc.setFaults({ unresponsiveInstances: [holder.instanceId] });
    const hungAt = Date.now();
    const [sameZone, otherZone] = await Promise.all([
      takeOver(same, 'loss-same', sameDigest, hungAt),
      takeOver(other, 'loss-other', otherDigest, hungAt),
    ]);

    for (const [title, r] of [[`same zone (${zoneA})`, sameZone], [`other zone (${zoneB})`, otherZone]] as const) {
      printTable(`node loss → Mount on another node, ${title}: ${WRITTEN_MIB} MiB written, STOWAGE_FENCE_AFTER=60s, localcloud realistic latencies`, [
        ['hang → Mount succeeded, s', r.totalS],
        ...r.stages.map(([stage, s]): [string, number] => [`  ${stage}, s`, s]),
        ['Mount answers (Swarm retries included)', r.answers],
        ['data intact', r.intact ? 'yes' : 'NO'],
      ]);
    }
    await recordResults('nodeLoss', { writtenMiB: WRITTEN_MIB, fenceAfterMs: FENCE_AFTER_MS, sameZone, otherZone });
  } finally {
    await Promise.all(nodes.map(async (node) => node.driver.stop()));
    await unmountAll(cloud);
    await cloud.close();
  }
}

runIfMain(import.meta.url, main);
