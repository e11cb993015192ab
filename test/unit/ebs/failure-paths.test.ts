/**
 * Failure paths of the EBS driver's background work that nothing else reaches: a detach that keeps
 * failing, and a lost volume whose unmount fails or whose loss was a lagging read. Time is jest's
 * fake clock, so ten minutes of retries cost nothing and no assertion depends on how fast this
 * machine is.
 */
import { jest } from '@jest/globals';
import { CreateVolumeCommand, DescribeVolumesCommand, type Filter, type Volume } from '@aws-sdk/client-ec2';
import { CallCounter } from '../../../aws/call-counter.js';
import type { OperationContext } from '../../../core/context.js';
import { CloudError, PendingError } from '../../../core/errors.js';
import { createLogger, type Logger } from '../../../core/log.js';
import { BackgroundDetach } from '../../../drivers/ebs/background-detach.js';
import { BACKGROUND_LIMIT_MS } from '../../../drivers/ebs/ebs-calls.js';
import { LossWatch } from '../../../drivers/ebs/loss-watch.js';
import { VolumeCatalog } from '../../../drivers/ebs/volume-catalog.js';
import { driverWorld, ME, OTHER } from './driver-world.js';
import { FakeEc2 } from './fake-ec2.js';
import { FakeHost } from './fake-host.js';
import { gp3Options } from '../../helpers/volume-options.js';

const ERROR = 50;
const WARN = 40;

function capturedLog(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) };
  return { log: createLogger('debug', sink as unknown as NodeJS.WritableStream, 'json'), lines };
}

/** Lets every promise chain run that needs no timer (setImmediate is not faked). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
}

afterEach(() => {
  jest.useRealTimers();
});

describe('BackgroundDetach', () => {
  const throttled = () => new CloudError('Request limit exceeded.', 'RequestLimitExceeded', {}, { retryable: true });

  beforeEach(() => {
    // Timers and the clock are fake; what promises need to run (microtasks, setImmediate) is not.
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'clearImmediate', 'queueMicrotask'] });
  });

  test('a detach that keeps failing is given up within BACKGROUND_LIMIT_MS, with one loud error naming the volume', async () => {
    const { log, lines } = capturedLog();
    const background = new BackgroundDetach();
    const startedAt = Date.now();
    const attempts: OperationContext[] = [];
    background.start('db1', log, async (ctx) => {
      attempts.push(ctx);
      throw throttled();
    });

    // A minute before the limit it is still retrying, quietly (warnings, no error).
    await jest.advanceTimersByTimeAsync(BACKGROUND_LIMIT_MS - 60_000);
    expect(background.has('db1')).toBe(true);
    expect(lines.filter((l) => l.level === ERROR)).toEqual([]);
    expect(lines.filter((l) => l.level === WARN && /retrying/.test(String(l.msg))).length).toBe(attempts.length);
    const beforeLimit = attempts.length;

    await jest.advanceTimersByTimeAsync(60_000);
    expect(background.has('db1')).toBe(false);
    const errors = lines.filter((l) => l.level === ERROR);
    expect(errors).toHaveLength(1);
    expect(String(errors[0]!.msg)).toMatch(/^volume db1 is unmounted but could not be detached for 10 min/);
    expect((errors[0]!.err as { message?: string }).message).toBe('Request limit exceeded.');
    // No attempt was given time beyond the limit.
    for (const ctx of attempts) expect(ctx.deadline).toBeLessThanOrEqual(startedAt + BACKGROUND_LIMIT_MS);
    expect(attempts.length).toBeGreaterThanOrEqual(beforeLimit);

    // Given up means given up: no more attempts, no second error.
    const given = attempts.length;
    await jest.advanceTimersByTimeAsync(BACKGROUND_LIMIT_MS);
    expect(attempts).toHaveLength(given);
    expect(lines.filter((l) => l.level === ERROR)).toHaveLength(1);
    // A later Unmount may start a new one.
    background.start('db1', log, async () => {});
    await settle();
    expect(background.has('db1')).toBe(false);
    expect(lines.some((l) => l.msg === 'background detach finished')).toBe(true);
  });

  test('a cancel during a backoff ends it at once, without waiting for the backoff', async () => {
    const { log, lines } = capturedLog();
    const background = new BackgroundDetach();
    let attempts = 0;
    background.start('db1', log, async () => {
      attempts++;
      throw throttled();
    });
    // Attempts at 0, 1, 3, 7, 15, 31, 61, 91 s: at 100 s it waits 30 s for the next.
    await jest.advanceTimersByTimeAsync(100_000);
    expect(attempts).toBe(8);
    expect(background.has('db1')).toBe(true);

    let cancelled = false;
    const cancel = background.cancel('db1').then(() => (cancelled = true));
    // The clock stands still: only the abort can end the backoff.
    await settle();
    expect(cancelled).toBe(true);
    await cancel;
    expect(background.has('db1')).toBe(false);

    await jest.advanceTimersByTimeAsync(BACKGROUND_LIMIT_MS);
    expect(attempts).toBe(8);
    expect(lines.filter((l) => l.level === ERROR)).toEqual([]);
  });

  test('a cancel during an attempt aborts it, waits for it to end, and no attempt follows', async () => {
    const { log, lines } = capturedLog();
    const background = new BackgroundDetach();
    let attempts = 0;
    let inAttempt: OperationContext | undefined;
    let endAttempt: () => void = () => {};
    background.start('db1', log, (ctx) => {
      attempts++;
      inAttempt = ctx;
      // As the detacher's waits do: the cancel signal ends the wait; this one ends only when let go.
      return new Promise((_resolve, reject) => (endAttempt = () => reject(new Error('cancelled'))));
    });
    await settle();
    expect(attempts).toBe(1);

    let cancelled = false;
    const cancel = background.cancel('db1').then(() => (cancelled = true));
    await settle();
    expect(inAttempt!.cancel?.aborted).toBe(true);
    // The attempt in progress is waited for (a Mount must not race the detach it cancels).
    expect(cancelled).toBe(false);
    endAttempt();
    await cancel;
    expect(background.has('db1')).toBe(false);
    await jest.advanceTimersByTimeAsync(BACKGROUND_LIMIT_MS);
    expect(attempts).toBe(1);
    expect(lines.filter((l) => (l.level as number) >= WARN)).toEqual([]);
  });

  test('stopAll ends every retry, in a backoff or in an attempt, and none resumes', async () => {
    const { log, lines } = capturedLog();
    const background = new BackgroundDetach();
    const attempts = new Map<string, number>();
    const failing = (name: string) => async () => {
      attempts.set(name, (attempts.get(name) ?? 0) + 1);
      throw throttled();
    };
    background.start('a', log, failing('a'));
    await jest.advanceTimersByTimeAsync(5000);
    background.start('b', log, failing('b'));
    // 'c' is in an attempt that ends when it is cancelled.
    background.start('c', log, (ctx) => {
      attempts.set('c', (attempts.get('c') ?? 0) + 1);
      return new Promise((_resolve, reject) => ctx.cancel!.addEventListener('abort', () => reject(new Error('aborted')), { once: true }));
    });
    await jest.advanceTimersByTimeAsync(500);
    expect(['a', 'b', 'c'].map((n) => background.has(n))).toEqual([true, true, true]);
    const before = new Map(attempts);

    let stopped = false;
    const stop = background.stopAll().then(() => (stopped = true));
    await settle();
    expect(stopped).toBe(true);
    await stop;
    expect(['a', 'b', 'c'].map((n) => background.has(n))).toEqual([false, false, false]);

    await jest.advanceTimersByTimeAsync(BACKGROUND_LIMIT_MS);
    expect(attempts).toEqual(before);
    expect(lines.filter((l) => l.level === ERROR)).toEqual([]);
  });
});

describe('LossWatch', () => {
  const ZONE = 'us-east-1a';
  const MOUNT_ROOT = '/mnt/stowage';
  const TARGET = `${MOUNT_ROOT}/data`;
  /** As the driver runs it by default: a check every fenceAfterMs / 4, a loss confirmed after 10 s. */
  const INTERVAL_MS = 15_000;
  const CONFIRM_MS = 10_000;

  let ec2: FakeEc2;
  let host: FakeHost;
  let log: Logger;
  let lines: Record<string, unknown>[];
  let watch: LossWatch;
  let volumeId: string;
  let mounting: Set<string>;

  const attachedTo = (instanceId: string, state = 'attached') => {
    ec2.volumes.get(volumeId)!.Attachments = [{ VolumeId: volumeId, InstanceId: instanceId, Device: '/dev/xvdba', State: state as 'attached', AttachTime: new Date('2024-05-03T10:00:00Z') }];
  };
  const unmounts = () => host.calls.filter((c) => c === `unmount ${TARGET}`).length;
  const lostLogs = () => lines.filter((l) => l.level === ERROR && l.volume === 'data' && /was LOST: it is no longer attached/.test(String(l.msg)));
  const failedUnmountLogs = () => lines.filter((l) => l.level === ERROR && l.volume === 'data' && /was LOST and could not be unmounted here/.test(String(l.msg)));
  /** One heartbeat's check, INTERVAL_MS after the last. */
  const nextCheck = async () => {
    jest.setSystemTime(Date.now() + INTERVAL_MS);
    await watch.check();
  };

  beforeEach(async () => {
    // Only the clock is fake: the catalog's short batching delay runs on real timers.
    jest.useFakeTimers({
      doNotFake: ['nextTick', 'setImmediate', 'clearImmediate', 'queueMicrotask', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'hrtime', 'performance'],
      now: new Date('2024-05-03T12:00:00Z'),
    });
    ec2 = new FakeEc2();
    host = new FakeHost();
    ({ log, lines } = capturedLog());
    ec2.addInstance(ME, ZONE);
    ec2.addInstance(OTHER, ZONE);
    volumeId = ec2.addVolume('data', ZONE);
    attachedTo(ME);
    await host.mount(`/dev/nvme-${volumeId}`, TARGET, 'ext4', []);
    mounting = new Set();
    // ttl 0: every check reads EC2, as the driver's does (its cache lives 5 s, its checks come every 15 s).
    const catalog = new VolumeCatalog({ ec2: ec2.client, counter: new CallCounter(), cluster: 'test', ttlMs: 0, now: () => Date.now() });
    watch = new LossWatch({ host, catalog, me: ME, confirmMs: CONFIRM_MS, mountRoot: MOUNT_ROOT, log, mounting: (name) => mounting.has(name) });
    await watch.check();
    expect(unmounts()).toBe(0);
  });
  afterEach(() => {
    ec2.mock.restore();
  });

  test('a lost volume whose unmount fails (busy) is logged loudly, tried again on a later check, and unmounted once free', async () => {
    host.busy.add(TARGET);
    // Another node fenced this one: EC2 shows the volume attached there.
    attachedTo(OTHER);
    await nextCheck(); // suspected
    expect(unmounts()).toBe(0);
    await nextCheck(); // confirmed: unmount, which fails
    expect(unmounts()).toBe(1);
    expect(lostLogs()).toHaveLength(1);
    expect(lostLogs()[0]).toMatchObject({ volumeId, mountpoint: TARGET, holder: OTHER });
    const failed = failedUnmountLogs();
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ volumeId, mountpoint: TARGET });
    expect((failed[0]!.err as { message?: string }).message).toMatch(/target is busy/);
    expect(await host.mountAt(TARGET)).toBeDefined();

    // Not forgotten: a later check, at most a new confirmation later, tries again (and says so again).
    for (let i = 0; i < Math.ceil(CONFIRM_MS / INTERVAL_MS) + 1 && unmounts() === 1; i++) await nextCheck();
    expect(unmounts()).toBe(2);
    expect(failedUnmountLogs()).toHaveLength(2);

    // Whatever held it lets go: the next try unmounts it.
    host.busy.delete(TARGET);
    for (let i = 0; i < Math.ceil(CONFIRM_MS / INTERVAL_MS) + 1 && (await host.mountAt(TARGET)); i++) await nextCheck();
    expect(await host.mountAt(TARGET)).toBeUndefined();
    expect(failedUnmountLogs()).toHaveLength(2);

    // Gone from the mount table: nothing more to do.
    const calls = unmounts();
    await nextCheck();
    await nextCheck();
    expect(unmounts()).toBe(calls);
  });

  test('a loss that a later read shows was a lagging Describe is not acted on, and its confirmation starts over', async () => {
    // A Describe shows the volume attached elsewhere…
    attachedTo(OTHER);
    await nextCheck();
    // …and the next one shows it attached here after all, past the confirmation time.
    attachedTo(ME);
    await nextCheck();
    expect(unmounts()).toBe(0);
    // Lost again: the earlier suspicion does not count, so this read alone does not confirm it.
    attachedTo(OTHER);
    await nextCheck();
    expect(unmounts()).toBe(0);
    attachedTo(ME);
    await nextCheck();
    await nextCheck();
    expect(unmounts()).toBe(0);
    expect(await host.mountAt(TARGET)).toBeDefined();
    expect(lostLogs()).toEqual([]);

    // Control: a loss that every read shows for CONFIRM_MS is acted on.
    attachedTo(OTHER);
    await nextCheck();
    await nextCheck();
    expect(unmounts()).toBe(1);
    expect(await host.mountAt(TARGET)).toBeUndefined();
    expect(lostLogs()).toHaveLength(1);
  });

  test('a lost volume whose unmount failed and that EC2 then shows attached here again is not unmounted', async () => {
    host.busy.add(TARGET);
    attachedTo(OTHER);
    await nextCheck();
    await nextCheck();
    expect(unmounts()).toBe(1);
    expect(failedUnmountLogs()).toHaveLength(1);

    // The reads flip back: the volume is attached here. The busy holder letting go changes nothing.
    attachedTo(ME);
    host.busy.delete(TARGET);
    for (let i = 0; i < 4; i++) await nextCheck();
    expect(unmounts()).toBe(1);
    expect(await host.mountAt(TARGET)).toBeDefined();
  });

  test('a volume a Mount in flight owns is left alone, however long it looks lost', async () => {
    mounting.add('data');
    attachedTo(OTHER);
    for (let i = 0; i < 4; i++) await nextCheck();
    expect(unmounts()).toBe(0);
    expect(lostLogs()).toEqual([]);
  });
});

describe('VolumeCreator', () => {
  const ZONE = 'us-east-1a';
  const OPTIONS = gp3Options(10);

  test('a Create that answered Pending while racing another node settles the race when it is asked again', async () => {
    const world = driverWorld(ZONE);
    const driver = world.makeDriver();
    try {
      const { ec2 } = world;
      const describe = (ec2 as unknown as { describeVolumes(filters: Filter[]): { Volumes: Volume[] } }).describeVolumes.bind(ec2);
      let ours: string | undefined;
      let slow = true;
      // Another node's Create of the name lands just before ours (our look-up missed it), and EC2 is
      // slow to make ours available: our Create answers Pending before it could settle the race.
      ec2.mock.on(CreateVolumeCommand).callsFake((input) => {
        if (!ours) ec2.addVolume('data', ZONE, { Size: 10 });
        const created = ec2.handleCreateVolume(input);
        ours ??= created.VolumeId;
        return created;
      });
      ec2.mock.on(DescribeVolumesCommand).callsFake((input: { Filters?: Filter[] }) => {
        const out = describe(input.Filters ?? []);
        for (const v of out.Volumes) if (slow && v.VolumeId === ours) v.State = 'creating';
        return out;
      });
      const err = await driver.create('data', OPTIONS, { deadline: Date.now() + 300, log: world.log }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PendingError);
      expect(ours).toBeDefined();
      const live = () => [...ec2.volumes.values()].filter((v) => v.Tags?.some((t) => t.Key === 'stowage:volume' && t.Value === 'data')).map((v) => v.VolumeId);
      expect(live()).toHaveLength(2);

      // Asked again (as Swarm does), the Create finds the name and deletes its own, newer volume.
      slow = false;
      await driver.create('data', OPTIONS, { deadline: Date.now() + 3000, log: world.log });
      expect(live()).toHaveLength(1);
      expect(live()).not.toContain(ours);
      await expect(driver.get('data', { deadline: Date.now() + 3000, log: world.log })).resolves.toBeDefined();
    } finally {
      await driver.stop();
      world.ec2.mock.restore();
    }
  });
});
