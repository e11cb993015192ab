import { StowageError } from '../../../core/errors.js';
import { silentLogger } from '../../../core/log.js';
import type { Driver } from '../../../drivers/driver.js';
import { DeferredDriver } from '../../../plugin/deferred-driver.js';
import { MemoryDriver } from './memory-driver.js';

const ctx = (ms = 2000) => ({ deadline: Date.now() + ms, log: silentLogger });

/** A start that answers only when the test says so. */
function gate(): { start: () => Promise<Driver>; open: (driver: Driver) => void; fail: (err: Error) => void; attempts: () => number } {
  let attempts = 0;
  let settle: { resolve: (d: Driver) => void; reject: (e: Error) => void } | undefined;
  return {
    start: () => {
      attempts += 1;
      return new Promise<Driver>((resolve, reject) => (settle = { resolve, reject }));
    },
    open: (driver) => settle!.resolve(driver),
    fail: (err) => settle!.reject(err),
    attempts: () => attempts,
  };
}

async function refusal(request: Promise<unknown>): Promise<StowageError> {
  const err = await request.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(StowageError);
  return err as StowageError;
}

// Issue 15.9: every Get asks every backing, so a backing that is slow to start must not hold up a
// Get for the others until dockerd's limit, and its failure must be an error dockerd can retry.
describe('DeferredDriver', () => {
  test('a start still running: a look-up waits only briefly, then a retryable error naming the backing', async () => {
    const g = gate();
    const deferred = new DeferredDriver('relocatable', '/mnt/stowage', g.start, { lookupWaitMs: 50 });
    // The start never ends here: an answer at all means the look-up gave up waiting on its own.
    const err = await refusal(deferred.get('db', ctx()));
    expect(err.retryable).toBe(true);
    expect(err.context).toMatchObject({ backing: 'relocatable' });
    expect(err.message).toBe('backing relocatable is still starting (node identity, first AWS call); retry');
    await expect(refusal(deferred.list(ctx()))).resolves.toMatchObject({ retryable: true });
    // The start goes on meanwhile, and once it is done the driver answers.
    const real = new MemoryDriver('relocatable');
    g.open(real);
    await expect(deferred.list(ctx())).resolves.toEqual([]);
    expect(g.attempts()).toBe(1);
  });

  test('a failed start: retryable, naming why; the next request starts again', async () => {
    const g = gate();
    const deferred = new DeferredDriver('relocatable', '/mnt/stowage', g.start, { lookupWaitMs: 50 });
    g.fail(new Error('connect ECONNREFUSED 169.254.169.254:80'));
    await new Promise((r) => setImmediate(r));
    const err = await refusal(deferred.get('db', ctx()));
    expect(err.retryable).toBe(true);
    expect(err.message).toBe('backing relocatable could not start (connect ECONNREFUSED 169.254.169.254:80); it is tried again, retry');
    expect(g.attempts()).toBe(2);
  });

  test('work on a volume of this backing waits for the start within its own deadline', async () => {
    const g = gate();
    const deferred = new DeferredDriver('relocatable', '/mnt/stowage', g.start, { lookupWaitMs: 10 });
    const real = new MemoryDriver('relocatable');
    await real.create('db', {} as never);
    const mounting = deferred.mount('db', ctx());
    setTimeout(() => g.open(real), 100);
    await expect(mounting).resolves.toBe('/mnt/test/db');
    await expect(refusal(new DeferredDriver('shared', '/mnt/stowage', gate().start).mount('web', ctx(50)))).resolves.toMatchObject({ retryable: true });
  });
});
