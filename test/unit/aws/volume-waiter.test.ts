import { DescribeVolumesCommand, EC2Client, type Filter, type Volume } from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { CallCounter } from '../../../aws/call-counter.js';
import { VolumeWaiter, WaitTimeoutError } from '../../../aws/volume-waiter.js';
import { silentLogger } from '../../../core/log.js';

const ec2Mock = mockClient(EC2Client);
const ec2 = new EC2Client({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });

/** Volume states as DescribeVolumes will report them, changed by the test between polls. */
const states = new Map<string, string>();

beforeEach(() => {
  ec2Mock.reset();
  states.clear();
  ec2Mock.on(DescribeVolumesCommand).callsFake((input: { Filters: Filter[] }) => {
    const ids = input.Filters.find((f) => f.Name === 'volume-id')!.Values!;
    return { Volumes: ids.filter((id) => states.has(id)).map((id): Volume => ({ VolumeId: id, State: states.get(id) as 'available' })) };
  });
});

function waiter(counter: CallCounter, initialDelayMs = 20) {
  return new VolumeWaiter({ ec2, counter, log: silentLogger, initialDelayMs, factor: 1.5 });
}

const available = (v: Volume | undefined) => v?.State === 'available';

describe('VolumeWaiter', () => {
  test('an aborted wait stops at once and asks EC2 nothing more', async () => {
    const counter = new CallCounter();
    const w = waiter(counter, 50);
    states.set('vol-a', 'creating');
    const done = new AbortController();
    const waiting = w.waitFor('vol-a', available, { deadline: Date.now() + 2000, what: 'available', log: silentLogger, signal: done.signal });
    done.abort(new Error('seen another way'));
    await expect(waiting).rejects.toThrow('seen another way');
    await new Promise((r) => setTimeout(r, 120));
    expect(counter.count('DescribeVolumes')).toBe(0);
  });

  test('waiters arriving a little apart join the poll already planned', async () => {
    const counter = new CallCounter();
    const w = waiter(counter, 100);
    for (const id of ['vol-a', 'vol-b']) states.set(id, 'available');
    const opts = () => ({ deadline: Date.now() + 2000, what: 'available', log: silentLogger });
    const first = w.waitFor('vol-a', available, opts());
    await new Promise((r) => setTimeout(r, 30));
    await Promise.all([first, w.waitFor('vol-b', available, opts())]);
    expect(counter.count('DescribeVolumes')).toBe(1);
  });

  test('concurrent waiters share one DescribeVolumes per poll, carrying all their ids', async () => {
    const counter = new CallCounter();
    const w = waiter(counter);
    for (const id of ['vol-a', 'vol-b', 'vol-c']) states.set(id, 'available');
    const opts = { deadline: Date.now() + 2000, what: 'available', log: silentLogger };
    const results = await Promise.all(['vol-a', 'vol-b', 'vol-c'].map((id) => w.waitFor(id, available, opts)));
    expect(results.map((v) => v?.VolumeId)).toEqual(['vol-a', 'vol-b', 'vol-c']);
    expect(counter.count('DescribeVolumes')).toBe(1);
    const filter = (ec2Mock.calls()[0]!.args[0].input as { Filters: Filter[] }).Filters[0]!;
    expect(filter).toEqual({ Name: 'volume-id', Values: ['vol-a', 'vol-b', 'vol-c'] });
  });

  test('polls with growing intervals until the state is reached', async () => {
    const counter = new CallCounter();
    const w = waiter(counter);
    states.set('vol-a', 'creating');
    setTimeout(() => states.set('vol-a', 'available'), 120);
    const started = Date.now();
    await w.waitFor('vol-a', available, { deadline: Date.now() + 2000, what: 'available', log: silentLogger });
    expect(Date.now() - started).toBeGreaterThanOrEqual(120);
    // 20, 30, 45, 67.5 … ms: about four polls by 120 ms, not one per tick of a tight loop.
    expect(counter.count('DescribeVolumes')).toBeGreaterThanOrEqual(3);
    expect(counter.count('DescribeVolumes')).toBeLessThanOrEqual(6);
  });

  test('a waiter that reaches its deadline gets WaitTimeoutError with the state last seen; others go on', async () => {
    const counter = new CallCounter();
    const w = waiter(counter);
    states.set('vol-a', 'creating');
    states.set('vol-b', 'creating');
    const short = w.waitFor('vol-a', available, { deadline: Date.now() + 80, what: 'vol-a available', log: silentLogger });
    const long = w.waitFor('vol-b', available, { deadline: Date.now() + 2000, what: 'vol-b available', log: silentLogger });
    const err = (await short.catch((e: unknown) => e)) as WaitTimeoutError;
    expect(err).toBeInstanceOf(WaitTimeoutError);
    expect(err.message).toBe('timed out waiting for vol-a available');
    expect(err.last?.State).toBe('creating');
    states.set('vol-b', 'available');
    await expect(long).resolves.toMatchObject({ VolumeId: 'vol-b' });
  });

  test('a volume that is gone is an answer (undefined), not an error for the whole batch', async () => {
    const w = waiter(new CallCounter());
    states.set('vol-b', 'available');
    const opts = { deadline: Date.now() + 2000, what: 'x', log: silentLogger };
    const [gone, there] = await Promise.all([w.waitFor('vol-a', (v) => v === undefined, opts), w.waitFor('vol-b', available, opts)]);
    expect(gone).toBeUndefined();
    expect(there?.VolumeId).toBe('vol-b');
  });
});
