import type { OperationContext } from '../../core/context.js';
import { delay } from '../../core/delay.js';
import type { Logger } from '../../core/log.js';
import { BACKGROUND_LIMIT_MS } from './ebs-calls.js';

/** Each attempt gets this long (a Mount that cancels the detach waits for the attempt in progress). */
const ATTEMPT_MS = 15_000;
const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30_000;

interface Running {
  abort: AbortController;
  done: Promise<void>;
}

/**
 * Detaches that an Unmount could not finish (EC2 throttling, a detach outliving the request). The
 * filesystem is already unmounted, so the reference is gone (invariant 8); the detach is retried
 * here until it succeeds. A Mount of the same volume on this node cancels it first and then finds
 * the attachment as it is: still attached (reused), detaching (waited for) or detached.
 */
export class BackgroundDetach {
  private readonly running = new Map<string, Running>();

  /** Retries `attempt` until it resolves, the volume is mounted again here (cancel), or BACKGROUND_LIMIT_MS. */
  start(name: string, log: Logger, attempt: (ctx: OperationContext) => Promise<void>): void {
    if (this.running.has(name)) return;
    const abort = new AbortController();
    const done = this.retry(name, log, attempt, abort.signal).finally(() => {
      if (this.running.get(name)?.abort === abort) this.running.delete(name);
    });
    this.running.set(name, { abort, done });
  }

  /** Stops the retries for `name` and waits for the attempt in progress to end. */
  async cancel(name: string): Promise<void> {
    const running = this.running.get(name);
    if (!running) return;
    running.abort.abort();
    await running.done;
  }

  has(name: string): boolean {
    return this.running.has(name);
  }

  /** The plugin is stopping: no new attempts (a restart resumes them from EC2's state). */
  async stopAll(): Promise<void> {
    const all = [...this.running.values()];
    for (const running of all) running.abort.abort();
    await Promise.all(all.map((running) => running.done));
  }

  private async retry(name: string, log: Logger, attempt: (ctx: OperationContext) => Promise<void>, signal: AbortSignal): Promise<void> {
    const giveUpAt = Date.now() + BACKGROUND_LIMIT_MS;
    for (let backoff = FIRST_BACKOFF_MS; !signal.aborted; backoff = Math.min(backoff * 2, MAX_BACKOFF_MS)) {
      try {
        await attempt({ deadline: Math.min(giveUpAt, Date.now() + ATTEMPT_MS), log, cancel: signal });
        log.info('background detach finished');
        return;
      } catch (err) {
        if (signal.aborted) return;
        if (Date.now() + backoff >= giveUpAt) {
          log.error({ err }, `volume ${name} is unmounted but could not be detached for ${BACKGROUND_LIMIT_MS / 60_000} min; other nodes cannot have it until it is (restart the plugin or detach it by hand)`);
          return;
        }
        log.warn({ err, retryInMs: backoff }, 'background detach failed; retrying');
      }
      await delay(backoff, signal);
    }
  }
}
