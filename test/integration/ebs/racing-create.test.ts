/**
 * Two nodes in one zone Create the same name at the same moment (dockerd's Get before Create runs
 * on every node preparing the task) while EC2's Describe lags: each may make a volume, and the
 * race must settle on one — the older — whatever either node's lagging reads showed it. Then the
 * volume mounts on either node and keeps what was written. Real SDK, localcloud, loop devices.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { delay } from '../../../core/delay.js';
import { StowageError } from '../../../core/errors.js';
import { asRoot } from '../../helpers/as-root.js';
import { ctx, startEbsWorld, until, type EbsNode, type EbsWorld } from './ebs-world.js';
import { gp3Options } from '../../helpers/volume-options.js';

const ZONE = 'us-east-1a';
const NAME = 'db1';
const ROUNDS = 5;
const MAX_LAG_MS = 300;
const OPTIONS = gp3Options(1);
const GONE = new Set(['deleting', 'deleted']);

/** As Swarm does with a task: a retryable answer is asked again; anything else fails the test. */
async function retrying<T>(what: string, work: () => Promise<T>, attempts = 10): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await work();
    } catch (err) {
      if (!(err instanceof StowageError) || !err.retryable || i >= attempts) throw new Error(`${what}: ${String(err)}`, { cause: err });
      await delay(500);
    }
  }
}

asRoot('two Creates of one name racing on two nodes under eventual consistency (localcloud, loop devices)', () => {
  let world: EbsWorld | undefined;
  let a: EbsNode;
  let b: EbsNode;

  beforeAll(async () => {
    world = await startEbsWorld('racing-create', { consistency: { mode: 'eventual', maxLagMs: MAX_LAG_MS } });
    a = await world.startNode(ZONE);
    b = await world.startNode(ZONE);
  });
  afterAll(async () => {
    await world?.close();
  });

  /** The live volumes carrying the name, read once EC2's lag has passed since the last change. */
  async function live(): Promise<string[]> {
    await delay(MAX_LAG_MS + 100);
    return (await world!.volumesNamed(NAME)).filter((v) => !GONE.has(v.State!)).map((v) => v.VolumeId!);
  }

  test(`${ROUNDS} rounds: one volume carries the name, either Create succeeds or answers a retryable error, and it mounts on either node with its data`, async () => {
    const outcomes: string[] = [];
    let raced = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      const nodes = [a, b];
      const made = world!.counter.count('CreateVolume', 'ok');
      const answers = await Promise.allSettled(nodes.map((node) => node.driver.create(NAME, OPTIONS, ctx(NAME))));
      const madeNow = world!.counter.count('CreateVolume', 'ok') - made;
      if (madeNow > 1) raced++;
      outcomes.push(`round ${round}: ${madeNow} made; ${answers.map((r) => (r.status === 'fulfilled' ? 'ok' : String(r.reason))).join(' | ')}`);
      // Each Create succeeded, or gave a clear answer the caller can ask again; at least one succeeded.
      for (const answer of answers) {
        if (answer.status === 'rejected') {
          const err = answer.reason as unknown;
          expect(err).toBeInstanceOf(StowageError);
          expect((err as StowageError).retryable).toBe(true);
          expect((err as StowageError).message).toMatch(new RegExp(NAME));
        }
      }
      expect(answers.some((r) => r.status === 'fulfilled')).toBe(true);
      // A node whose Create answered retryable asks again, and that answer is a success.
      for (const [i, answer] of answers.entries()) {
        if (answer.status === 'rejected') await retrying(`round ${round}: Create again on node ${i + 1}`, () => nodes[i]!.driver.create(NAME, OPTIONS, ctx(NAME)));
      }

      // The losers settled: exactly one volume carries the name.
      const carriers = await live();
      expect({ round, carriers: carriers.length, outcomes }).toEqual({ round, carriers: 1, outcomes });

      // It mounts on one node, keeps a write, and mounts on the other with that write.
      const [first, second] = round % 2 === 1 ? [a, b] : [b, a];
      const mp1 = await retrying(`round ${round}: Mount on the first node`, () => first.driver.mount(NAME, ctx(NAME, 60_000)));
      await writeFile(path.join(mp1, 'round'), `written in round ${round}`);
      await retrying(`round ${round}: Unmount on the first node`, () => first.driver.unmount(NAME, ctx(NAME, 60_000)));
      const mp2 = await retrying(`round ${round}: Mount on the second node`, () => second.driver.mount(NAME, ctx(NAME, 60_000)));
      expect(await readFile(path.join(mp2, 'round'), 'utf8')).toBe(`written in round ${round}`);
      await retrying(`round ${round}: Unmount on the second node`, () => second.driver.unmount(NAME, ctx(NAME, 60_000)));
      expect(await live()).toEqual(carriers);

      // Removed before the next round (on the node that mounted it last: the other one may have made it).
      await retrying(`round ${round}: Remove`, () => second.driver.remove(NAME, ctx(NAME, 60_000)));
      await until(`round ${round}: no live volume carries ${NAME}`, async () => (await live()).length === 0, 15_000);
    }
    // Both nodes missed the name and made a volume (the race this is about) at least once.
    expect({ raced: raced > 0, outcomes }).toEqual({ raced: true, outcomes });
  });
});
