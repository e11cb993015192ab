import { DetachVolumeCommand } from '@aws-sdk/client-ec2';
import { Ec2Code, hasCode, isNotFound } from '../../aws/errors.js';
import { WaitTimeoutError } from '../../aws/volume-waiter.js';
import type { Logger } from '../../core/log.js';
import type { WorkMetrics } from '../../core/metrics.js';
import type { EbsVolume } from '../../core/schema/ebs-volume.js';
import { attachmentOn, type EbsCalls } from './ebs-calls.js';
import type { Fencing } from './fencing.js';
import { heldElsewhere, type MountProgress } from './mount-flight.js';

/** How often a Mount waiting for another holder asks again whether that holder may be fenced. */
const HOLDER_RECHECK_MS = 5000;

export interface HolderDeps {
  calls: EbsCalls;
  fencing: Fencing;
  metrics?: WorkMetrics;
}

/**
 * Another instance holds the volume: wait, until the Mount's deadline, for it to let go; break its
 * hold only when fencing allows (invariant 7), loudly. Otherwise the Mount is refused, naming it.
 */
export class HolderWait {
  constructor(private readonly deps: HolderDeps) {}

  /** `whileHeld`: runs once, when the holder still holds the volume at the first look again. */
  async takeOver(volume: EbsVolume, answerDeadline: number, deadline: number, log: Logger, progress: MountProgress, whileHeld?: () => Promise<void>): Promise<EbsVolume> {
    const { calls, fencing } = this.deps;
    const holder = volume.attachment!.instanceId;
    progress.doing = `waiting for instance ${holder} in ${volume.zone} to detach ${volume.id}`;
    for (let look = 1; ; look++) {
      if (look === 2) await whileHeld?.();
      const verdict = await fencing.judge(holder, answerDeadline, log);
      if (verdict.fenceable) {
        progress.holder = undefined;
        return this.forceDetach(volume, holder, verdict.reason, deadline, log, progress);
      }
      const holding = { instance: holder, zone: volume.zone, reason: verdict.reason };
      progress.holder = holding;
      const recheckAt = Math.min(answerDeadline, verdict.staleAt ?? Infinity, Date.now() + HOLDER_RECHECK_MS);
      try {
        const released = await calls.waiter.waitFor(volume.id, (v) => !attachmentOn(v, holder), {
          deadline: recheckAt,
          what: `${volume.id} detached from ${holder}`,
          log,
        });
        progress.holder = undefined;
        log.info({ volumeId: volume.id, holder }, 'previous holder detached the volume');
        return calls.record(released, volume);
      } catch (err) {
        if (!(err instanceof WaitTimeoutError)) throw err;
        if (Date.now() >= answerDeadline) throw heldElsewhere(progress.context, holding);
      }
    }
  }

  private async forceDetach(volume: EbsVolume, holder: string, reason: string, deadline: number, log: Logger, progress: MountProgress): Promise<EbsVolume> {
    const { calls } = this.deps;
    log.warn({ volumeId: volume.id, holder, zone: volume.zone, reason }, `FORCE-DETACHING volume ${volume.name} (${volume.id}) from instance ${holder}: ${reason}`);
    this.deps.metrics?.fenced();
    progress.doing = `force-detaching ${volume.id} from ${holder}`;
    await calls.aws('DetachVolume', { deadline, log }, { volumeId: volume.id, instance: holder }, () =>
      calls.ec2.send(new DetachVolumeCommand({ VolumeId: volume.id, InstanceId: holder, Force: true })),
    ).catch((err: unknown) => {
      // Detached by itself meanwhile: what we wanted.
      if (!hasCode(err, Ec2Code.IncorrectState) && !isNotFound(err)) throw err;
    });
    return calls.waitUntil(volume, (v) => !attachmentOn(v, holder), `detached from ${holder}`, deadline, log, progress);
  }
}
