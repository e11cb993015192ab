import { PendingError } from '../core/errors.js';

interface Waiter {
  start: () => void;
  cancelled: boolean;
}

/**
 * One async lock per key: work on one volume runs one at a time, work on different volumes runs in
 * parallel. A waiter that reaches its deadline before its turn leaves the queue and never runs.
 */
export class KeyedLock {
  private readonly queues = new Map<string, Waiter[]>();
  private readonly busy = new Set<string>();

  async run<T>(key: string, work: () => Promise<T>, deadline?: number, describe = `another operation on ${key} is still running`): Promise<T> {
    await this.acquire(key, deadline, describe);
    try {
      return await work();
    } finally {
      this.release(key);
    }
  }

  /** Keys with work running now (for Status and metrics). */
  held(): string[] {
    return [...this.busy];
  }

  private acquire(key: string, deadline: number | undefined, describe: string): Promise<void> {
    if (!this.busy.has(key)) {
      this.busy.add(key);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = {
        cancelled: false,
        start: () => {
          if (timer) clearTimeout(timer);
          resolve();
        },
      };
      if (deadline !== undefined) {
        timer = setTimeout(() => {
          waiter.cancelled = true;
          reject(new PendingError(describe, { volume: key }));
        }, Math.max(0, deadline - Date.now()));
      }
      const queue = this.queues.get(key) ?? [];
      queue.push(waiter);
      this.queues.set(key, queue);
    });
  }

  private release(key: string): void {
    const queue = this.queues.get(key);
    while (queue && queue.length > 0) {
      const next = queue.shift()!;
      if (next.cancelled) continue;
      if (queue.length === 0) this.queues.delete(key);
      next.start();
      return;
    }
    this.queues.delete(key);
    this.busy.delete(key);
  }
}
