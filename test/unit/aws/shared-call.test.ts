import { SharedCall } from '../../../aws/shared-call.js';

describe('SharedCall', () => {
  test('callers within the window share one call, sent after the last of them asked', async () => {
    const shared = new SharedCall<number>(20);
    let sent = 0;
    const send = async () => ++sent;
    const first = shared.run(send);
    await new Promise((r) => setTimeout(r, 5));
    const second = shared.run(send);
    expect(sent).toBe(0);
    await expect(Promise.all([first, second])).resolves.toEqual([1, 1]);
    // The window has closed: the next caller gets a call of its own.
    await expect(shared.run(send)).resolves.toBe(2);
  });

  test('an error reaches every caller of that call, and the next call is a new one', async () => {
    const shared = new SharedCall<string>(1);
    const failing = async (): Promise<string> => {
      throw new Error('RequestLimitExceeded');
    };
    const results = await Promise.allSettled([shared.run(failing), shared.run(failing)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    await expect(shared.run(async () => 'fresh')).resolves.toBe('fresh');
  });
});
