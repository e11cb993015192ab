import type { OperationContext } from '../../core/context.js';
import { PendingError, VolumeBusyError, type ErrorContext, type StowageError } from '../../core/errors.js';
import { describeMove, type MoveProgress } from '../../snapshot/zone-move.js';

/** What a Mount in flight is doing, for the answer a Mount gets when its deadline comes first. */
export interface MountProgress {
  doing: string;
  context: ErrorContext;
  /** Set while waiting for another instance to let go: the answer then is "busy", naming it. */
  holder?: Holding;
  /** Set while the volume moves across zones: the answer then names the stage and progress. */
  move?: MoveProgress;
}

export interface Holding {
  instance: string;
  zone: string;
  reason: string;
}

interface MountWork {
  promise: Promise<string>;
  progress: MountProgress;
}

/** The answer for a Mount refused because another instance still holds the volume. */
export function heldElsewhere(context: ErrorContext, holder: Holding): StowageError {
  return new VolumeBusyError(
    `volume is attached to instance ${holder.instance} in ${holder.zone}, which still holds it (${holder.reason}); ` +
      'it must be unmounted there first',
    { ...context, instance: holder.instance, zone: holder.zone },
  );
}

/**
 * The Mounts in flight on this node, one per volume. A Mount that outlives its deadline answers a
 * retryable error naming the progress while the work goes on; the next Mount of the volume joins
 * that work instead of starting another.
 */
export class MountFlight {
  private readonly inflight = new Map<string, MountWork>();

  /** Joins the work in flight for `name`, or starts it; answers by the request's deadline. */
  mount(name: string, ctx: OperationContext, work: (progress: MountProgress) => Promise<string>): Promise<string> {
    let running = this.inflight.get(name);
    if (running) {
      ctx.log.info({ doing: running.progress.doing }, 'joining the mount already in progress');
    } else {
      running = this.start(name, ctx, work);
    }
    return this.answerBy(running, ctx.deadline);
  }

  has(name: string): boolean {
    return this.inflight.has(name);
  }

  /** What the Mount in flight for `name` is doing, and the promise of its end (undefined: none). */
  running(name: string): MountWork | undefined {
    return this.inflight.get(name);
  }

  /** The move a Mount in flight on this node is making of `name`, live. */
  moveOf(name: string): MoveProgress | undefined {
    return this.inflight.get(name)?.progress.move;
  }

  private start(name: string, ctx: OperationContext, work: (progress: MountProgress) => Promise<string>): MountWork {
    const progress: MountProgress = { doing: `looking up volume ${name}`, context: {} };
    const running: MountWork = { progress, promise: work(progress) };
    this.inflight.set(name, running);
    running.promise.then(
      () => this.inflight.delete(name),
      (err: unknown) => {
        this.inflight.delete(name);
        ctx.log.warn({ err, doing: progress.doing }, 'mount failed');
      },
    );
    return running;
  }

  /** The work's result if it comes by the deadline; else a retryable error saying what is pending. */
  private async answerBy(work: MountWork, deadline: number): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const { doing, context, holder, move } = work.progress;
        reject(
          holder
            ? heldElsewhere(context, holder)
            : move
              ? new PendingError(`${describeMove(move)}; the move goes on, mount again (on any node) to join it`, context)
              : new PendingError(`mount not finished yet: still ${doing}; the work goes on, mount again to join it`, context),
        );
      }, Math.max(0, deadline - Date.now()));
    });
    try {
      return await Promise.race([work.promise, late]);
    } finally {
      clearTimeout(timer);
    }
  }
}
