import { delay } from '../core/delay.js';

/** How long a call waits for others to share it: short next to an EC2 round trip. */
export const SHARE_WINDOW_MS = 10;

/**
 * One call for every caller that asks within `windowMs` of the first. The call is sent when the
 * window closes, so each caller gets an answer from after it asked (never an older one), and
 * twenty Mounts arriving together ask EC2 once instead of twenty times.
 */
export class SharedCall<T> {
  private pending: Promise<T> | undefined;

  constructor(private readonly windowMs: number = SHARE_WINDOW_MS) {}

  /** `send` is the first caller's; later callers in the window share its answer or its error. */
  run(send: () => Promise<T>): Promise<T> {
    if (!this.pending) {
      const pending: Promise<T> = delay(this.windowMs).then(() => {
        if (this.pending === pending) this.pending = undefined;
        return send();
      });
      this.pending = pending;
    }
    return this.pending;
  }
}
