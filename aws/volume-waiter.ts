import { DescribeVolumesCommand, type EC2Client, type Volume } from '@aws-sdk/client-ec2';
import { StowageError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { callAws, type RetryPolicy } from './call.js';
import type { CallCounter } from './call-counter.js';

/** A wait that reached its deadline; `last` is the volume as last seen (undefined: gone or never seen). */
export class WaitTimeoutError extends StowageError {
  readonly kind = 'wait-timeout';
  override readonly retryable = true;
  constructor(readonly what: string, readonly last: Volume | undefined) {
    super(`timed out waiting for ${what}`);
  }
}

export interface VolumeWaiterOptions {
  ec2: EC2Client;
  counter: CallCounter;
  log: Logger;
  /** First check after this long (EC2 rarely finishes sooner); tests on a zero-latency emulator use a few ms. */
  initialDelayMs?: number;
  factor?: number;
  maxDelayMs?: number;
  retry?: RetryPolicy;
}

export interface WaitOptions {
  deadline: number;
  /** For logs and the timeout message: "vol-1 attached to i-2". */
  what: string;
  log: Logger;
  /** Stops waiting (the caller learned the answer another way); the promise then rejects with the reason. */
  signal?: AbortSignal;
}

interface Waiter {
  volumeId: string;
  done: (volume: Volume | undefined) => boolean;
  deadline: number;
  delayMs: number;
  dueAt: number;
  last: Volume | undefined;
  timer: NodeJS.Timeout;
  resolve: (volume: Volume | undefined) => void;
  reject: (err: unknown) => void;
}

/** EC2 accepts up to 200 values per filter. */
const IDS_PER_CALL = 200;

/**
 * Waits for volume states with backoff. All waiters share each poll: one DescribeVolumes (filtered
 * by volume-id, so a deleted volume is an empty answer rather than an error that would fail the
 * whole batch) carries the ids of every waiter, so twenty concurrent Mounts cost one call per tick.
 */
export class VolumeWaiter {
  private readonly waiters = new Set<Waiter>();
  private tick: { at: number; timer: NodeJS.Timeout } | undefined;
  private polling = false;
  private readonly initialDelayMs: number;
  private readonly factor: number;
  private readonly maxDelayMs: number;

  constructor(private readonly options: VolumeWaiterOptions) {
    this.initialDelayMs = options.initialDelayMs ?? 1000;
    this.factor = options.factor ?? 1.6;
    this.maxDelayMs = options.maxDelayMs ?? 15_000;
  }

  /** Resolves with the volume as seen when `done` holds (undefined: the volume is gone). */
  waitFor(volumeId: string, done: (volume: Volume | undefined) => boolean, options: WaitOptions): Promise<Volume | undefined> {
    return new Promise((resolve, reject) => {
      const now = Date.now();
      const waiter: Waiter = {
        volumeId,
        done,
        deadline: options.deadline,
        delayMs: this.initialDelayMs,
        dueAt: Math.min(now + this.initialDelayMs, options.deadline),
        last: undefined,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          options.log.debug({ volumeId, what: options.what }, 'wait timed out');
          reject(new WaitTimeoutError(options.what, waiter.last));
        }, Math.max(0, options.deadline - now)),
      };
      if (options.signal) {
        const signal = options.signal;
        const abandon = () => {
          if (!this.waiters.has(waiter)) return;
          this.settle(waiter);
          reject(signal.reason);
        };
        if (signal.aborted) return abandon();
        signal.addEventListener('abort', abandon, { once: true });
      }
      this.waiters.add(waiter);
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.polling || this.waiters.size === 0) return;
    const at = Math.min(...[...this.waiters].map((w) => w.dueAt));
    // A waiter joins a poll already planned a little after its own due time rather than adding
    // one: Mounts started together then share every DescribeVolumes instead of staggering them.
    if (this.tick && this.tick.at <= at + this.initialDelayMs / 2) return;
    if (this.tick) clearTimeout(this.tick.timer);
    this.tick = { at, timer: setTimeout(() => void this.poll(), Math.max(0, at - Date.now())) };
  }

  private async poll(): Promise<void> {
    this.tick = undefined;
    this.polling = true;
    const batch = [...this.waiters];
    try {
      const seen = await this.describe([...new Set(batch.map((w) => w.volumeId))], Math.max(...batch.map((w) => w.deadline)));
      const now = Date.now();
      for (const waiter of batch) {
        if (!this.waiters.has(waiter)) continue; // timed out meanwhile
        waiter.last = seen.get(waiter.volumeId);
        if (waiter.done(waiter.last)) {
          this.settle(waiter);
          waiter.resolve(waiter.last);
        } else {
          waiter.delayMs = Math.min(waiter.delayMs * this.factor, this.maxDelayMs);
          waiter.dueAt = now + waiter.delayMs;
        }
      }
    } catch (err) {
      for (const waiter of batch) {
        if (!this.waiters.has(waiter)) continue;
        this.settle(waiter);
        waiter.reject(err);
      }
    } finally {
      this.polling = false;
      this.schedule();
    }
  }

  private settle(waiter: Waiter): void {
    clearTimeout(waiter.timer);
    this.waiters.delete(waiter);
  }

  private async describe(volumeIds: string[], deadline: number): Promise<Map<string, Volume>> {
    const seen = new Map<string, Volume>();
    for (let i = 0; i < volumeIds.length; i += IDS_PER_CALL) {
      const ids = volumeIds.slice(i, i + IDS_PER_CALL);
      const out = await callAws(
        this.options.counter,
        'DescribeVolumes',
        () => this.options.ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'volume-id', Values: ids }] })),
        { deadline, log: this.options.log, context: { volumeId: ids.join(',') }, ...(this.options.retry && { retry: this.options.retry }) },
      );
      for (const volume of out.Volumes ?? []) if (volume.VolumeId) seen.set(volume.VolumeId, volume);
    }
    return seen;
  }
}
