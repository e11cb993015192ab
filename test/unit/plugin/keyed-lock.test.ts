import { KeyedLock } from '../../../plugin/keyed-lock.js';
import { PendingError } from '../../../core/errors.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('KeyedLock', () => {
  test('serialises one key and lets other keys run', async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    const gate = deferred();
    const first = lock.run('a', async () => {
      order.push('a1 start');
      await gate.promise;
      order.push('a1 end');
    });
    const second = lock.run('a', async () => void order.push('a2'));
    await lock.run('b', async () => void order.push('b'));
    expect(order).toEqual(['a1 start', 'b']);
    gate.resolve();
    await Promise.all([first, second]);
    expect(order).toEqual(['a1 start', 'b', 'a1 end', 'a2']);
    expect(lock.held()).toEqual([]);
  });

  test('a waiter past its deadline gives up and never runs', async () => {
    const lock = new KeyedLock();
    const gate = deferred();
    const first = lock.run('v', () => gate.promise);
    let ran = false;
    const late = lock.run('v', async () => void (ran = true), Date.now() + 20, 'busy');
    await expect(late).rejects.toBeInstanceOf(PendingError);
    gate.resolve();
    await first;
    await lock.run('v', async () => undefined);
    expect(ran).toBe(false);
  });

  test('a failing holder releases the lock', async () => {
    const lock = new KeyedLock();
    await expect(lock.run('v', async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    await expect(lock.run('v', async () => 7)).resolves.toBe(7);
  });
});
