import type { Volume } from '@aws-sdk/client-ec2';
import type { EC2Client } from '@aws-sdk/client-ec2';
import { callInStep, type RetryPolicy } from '../../aws/call.js';
import type { CallCounter } from '../../aws/call-counter.js';
import type { VolumeReads } from '../../aws/volume-reads.js';
import type { VolumeWaiter } from '../../aws/volume-waiter.js';
import type { OperationContext } from '../../core/context.js';
import { VolumeNotFoundError, type ErrorContext } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { toEbsVolume, type EbsVolume } from '../../core/schema/ebs-volume.js';

/**
 * Work a request left running in the background (a Mount past its answer, a detach or a snapshot
 * after an Unmount) keeps going this long before it gives up; a restart picks it up from EC2's state.
 */
export const BACKGROUND_LIMIT_MS = 10 * 60_000;

/** This instance's live attachment of a volume, as EC2 answered. */
export function attachmentOn(volume: Volume | undefined, instanceId: string) {
  return volume?.Attachments?.find((a) => a.InstanceId === instanceId && a.State !== 'detached');
}

/** What a room reports of the work in progress (the Mount in flight's progress, or nothing). */
export interface Doing {
  doing: string;
}

/**
 * The EBS driver's rooms share one way to call EC2 (retried, bounded by the operation's deadline,
 * logged) and to wait for a volume's state (batched with every other waiter of this node).
 */
export class EbsCalls {
  constructor(
    readonly ec2: EC2Client,
    private readonly counter: CallCounter,
    readonly waiter: VolumeWaiter,
    /** One volume as a Describe shows it, or on a fresh view (the read barrier). */
    readonly reads: VolumeReads,
    private readonly cluster: string,
    private readonly retry: RetryPolicy | undefined,
  ) {}

  aws<T>(operation: string, ctx: OperationContext, context: ErrorContext, send: () => Promise<T>): Promise<T> {
    return callInStep(this.counter, operation, ctx, context, send, this.retry);
  }

  /** Waits for a state of `volume`; returns it as then seen. */
  async waitUntil(volume: EbsVolume, done: (v: Volume | undefined) => boolean, what: string, deadline: number, log: Logger, progress: Doing): Promise<EbsVolume> {
    progress.doing = `waiting for ${volume.id} ${what}`;
    const seen = await this.waiter.waitFor(volume.id, done, { deadline, what: `${volume.id} ${what}`, log });
    return this.record(seen, volume);
  }

  record(seen: Volume | undefined, before: EbsVolume): EbsVolume {
    const now = seen && toEbsVolume(seen, this.cluster);
    if (!now) throw new VolumeNotFoundError(before.name, { volumeId: before.id });
    return now;
  }
}
