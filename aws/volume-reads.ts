import { randomUUID } from 'node:crypto';
import { CreateTagsCommand, DescribeVolumesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import type { OperationContext } from '../core/context.js';
import { delay } from '../core/delay.js';
import { PendingError, type ErrorContext } from '../core/errors.js';
import { toEbsVolume, type EbsVolume } from '../core/schema/ebs-volume.js';
import { Tags } from '../core/schema/tags.js';
import { callInStep, type RetryPolicy } from './call.js';
import type { CallCounter } from './call-counter.js';
import { isNotFound } from './errors.js';

export interface VolumeReadsDeps {
  ec2: EC2Client;
  counter: CallCounter;
  cluster: string;
  retry?: RetryPolicy;
  /** First look again for a fresh view; later ones back off ×1.6 up to FRESH_POLL_MS. */
  pollInitialMs: number;
}

/** A fresh read polls quickly: EC2's lag is seconds, not minutes. */
const FRESH_POLL_MS = 1000;

/** One volume as EC2 has it: as any Describe answers, or on a view no older than our own last write. */
export class VolumeReads {
  constructor(private readonly deps: VolumeReadsDeps) {}

  /** The volume as a Describe shows it (undefined: gone); it may lag (EC2 is eventually consistent). */
  async volume(volumeId: string, step: OperationContext): Promise<EbsVolume | undefined> {
    const out = await this.aws('DescribeVolumes', step, { volumeId }, () =>
      this.deps.ec2.send(new DescribeVolumesCommand({ Filters: [{ Name: 'volume-id', Values: [volumeId] }] })),
    );
    const found = out.Volumes?.[0];
    return found && toEbsVolume(found, this.deps.cluster);
  }

  /**
   * The volume as EC2 has it now, read after a write of our own: a Describe that shows our barrier
   * is no older than that write, so it shows every change made before it (EC2 is eventually
   * consistent). Decisions that could lose data (re-create a blank volume, trust a snapshot, retire
   * the source of a move) are taken on this view only. undefined: the volume is gone.
   */
  async fresh(volumeId: string, step: OperationContext): Promise<EbsVolume | undefined> {
    const barrier = randomUUID();
    try {
      await this.aws('CreateTags', step, { volumeId }, () =>
        this.deps.ec2.send(new CreateTagsCommand({ Resources: [volumeId], Tags: [{ Key: Tags.readBarrier, Value: barrier }] })),
      );
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    for (let wait = this.deps.pollInitialMs; ; wait = Math.min(wait * 1.6, FRESH_POLL_MS)) {
      const now = await this.volume(volumeId, step);
      if (now === undefined || now.readBarrier === barrier) return now;
      if (Date.now() >= step.deadline) {
        throw new PendingError(`EC2 does not show a current view of ${volumeId} yet; the move goes on at the next Mount`, { volumeId });
      }
      await delay(Math.min(wait, step.deadline - Date.now()));
    }
  }

  private aws<T>(operation: string, step: OperationContext, context: ErrorContext, send: () => Promise<T>): Promise<T> {
    return callInStep(this.deps.counter, operation, step, context, send, this.deps.retry);
  }
}
