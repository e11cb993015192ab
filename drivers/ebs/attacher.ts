import { AttachVolumeCommand, DescribeInstancesCommand, DetachVolumeCommand } from '@aws-sdk/client-ec2';
import { Ec2Code, hasCode } from '../../aws/errors.js';
import { SharedCall } from '../../aws/shared-call.js';
import { WaitTimeoutError } from '../../aws/volume-waiter.js';
import { VolumeBusyError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { WorkMetrics } from '../../core/metrics.js';
import type { EbsAttachment, EbsVolume } from '../../core/schema/ebs-volume.js';
import type { Host } from '../../host/host.js';
import type { DeviceNameAllocator } from './device-names.js';
import { attachmentOn, type EbsCalls } from './ebs-calls.js';
import type { MountProgress } from './mount-flight.js';
import { deviceAppears } from './prepare-device.js';
import type { VolumeCatalog } from './volume-catalog.js';

export interface Attached {
  device: string;
  attachTime: string | undefined;
}

/** Attempts on fresh device names before an attach is given up. */
const MAX_ATTACH_ATTEMPTS = 3;

export interface AttacherDeps {
  calls: EbsCalls;
  host: Host;
  catalog: VolumeCatalog;
  names: DeviceNameAllocator;
  /** This node's instance: the only one this room attaches to. */
  me: string;
  /** An attachment `attaching` this long is undone and retried on another name. */
  stuckAttachMs: number;
  metrics?: WorkMetrics;
}

/**
 * Attaches a volume to this instance (DESIGN.md invariant 3): a fresh device name each try, an
 * attach stuck in `attaching` undone and retried on another name, a name EC2 refuses kept out.
 */
export class Attacher {
  private readonly mappings = new SharedCall<string[]>();

  constructor(private readonly deps: AttacherDeps) {}

  /** Returns the device name the volume is attached as, and EC2's AttachTime of that attachment. */
  async attach(volume: EbsVolume, deadline: number, log: Logger, progress: MountProgress): Promise<Attached> {
    const ended = this.deps.metrics?.attachStarted();
    try {
      return await this.attachOnFreeName(volume, deadline, log, progress);
    } finally {
      ended?.();
    }
  }

  private async attachOnFreeName(volume: EbsVolume, deadline: number, log: Logger, progress: MountProgress): Promise<Attached> {
    const { calls, names, me } = this.deps;
    for (let attempt = 1; ; attempt++) {
      const device = names.allocate(await this.blockDeviceNames(deadline, log));
      const context = { volumeId: volume.id, instance: me, device };
      progress.doing = `attaching ${volume.id} to ${me} as ${device}`;
      progress.context = { ...progress.context, ...context };
      let attachTime: string | undefined;
      try {
        const out = await calls.aws('AttachVolume', { deadline, log }, context, () =>
          calls.ec2.send(new AttachVolumeCommand({ VolumeId: volume.id, InstanceId: me, Device: device })),
        );
        attachTime = out.AttachTime?.toISOString();
      } catch (err) {
        if (hasCode(err, Ec2Code.InvalidParameterValue) && attempt < MAX_ATTACH_ATTEMPTS) {
          log.warn({ ...context, err: err.message }, 'EC2 refused the device name; trying another');
          names.refused(device);
          continue;
        }
        const ours = hasCode(err, Ec2Code.VolumeInUse) ? await this.attachedAs(volume, device, deadline, log) : undefined;
        if (!ours) {
          names.settle(device);
          if (hasCode(err, Ec2Code.VolumeInUse)) throw new VolumeBusyError(`volume ${volume.name} was attached to another instance meanwhile`, context);
          throw err;
        }
        attachTime = ours.attachTime;
      }
      try {
        if (await this.attachedUnlessStuck(volume, device, deadline, log)) {
          names.settle(device);
          return { device, attachTime };
        }
      } catch (err) {
        names.settle(device);
        throw err;
      }
      // Undone before giving up too: a stuck attachment left behind would hold the volume here.
      await this.undoStuck(volume, device, deadline, log, progress);
      if (attempt >= MAX_ATTACH_ATTEMPTS) {
        throw new WaitTimeoutError(`${volume.id} attached to ${me}: stuck in attaching on ${attempt} device names, each undone; if EC2 keeps it stuck, stop the instance (AWS's remedy) and the volume moves on`, undefined);
      }
    }
  }

  /**
   * This instance's own attachment found still `attaching` (left by an earlier Mount, or by the
   * plugin before a restart): waited for as a new one is, then undone and attached anew if stuck.
   * Stuck is judged from now, on this node's clock, not from EC2's AttachTime.
   */
  async resume(volume: EbsVolume, attachment: EbsAttachment, deadline: number, log: Logger, progress: MountProgress): Promise<Attached> {
    const device = attachment.device ?? '';
    progress.doing = `waiting for ${volume.id} attached to ${this.deps.me} as ${device}`;
    if (await this.attachedUnlessStuck(volume, device, deadline, log)) return { device, attachTime: attachment.attachTime };
    await this.undoStuck(volume, device, deadline, log, progress);
    return this.attach(volume, deadline, log, progress);
  }

  /**
   * false: still attaching after stuckAttachMs. Which limit ended the wait is decided by which one
   * it was given, not by reading the clock again: a timer may fire a moment early by Date.now().
   */
  private async attachedUnlessStuck(volume: EbsVolume, device: string, deadline: number, log: Logger): Promise<boolean> {
    const stuckAt = Date.now() + this.deps.stuckAttachMs;
    const stuckFirst = stuckAt < deadline;
    try {
      await this.attached(volume, device, stuckFirst ? stuckAt : deadline, log);
      return true;
    } catch (err) {
      if (!(err instanceof WaitTimeoutError) || !stuckFirst) throw err;
      log.warn({ volumeId: volume.id, instance: this.deps.me, device, waitedMs: this.deps.stuckAttachMs, state: attachmentOn(err.last, this.deps.me)?.State }, 'attachment stuck; force-detaching it and retrying on another device name');
      return false;
    }
  }

  private async undoStuck(volume: EbsVolume, device: string, deadline: number, log: Logger, progress: MountProgress): Promise<void> {
    const { calls, names, me } = this.deps;
    names.refused(device);
    progress.doing = `undoing the stuck attachment of ${volume.id} as ${device}`;
    await calls.aws('DetachVolume', { deadline, log }, { volumeId: volume.id, instance: me, device }, () =>
      calls.ec2.send(new DetachVolumeCommand({ VolumeId: volume.id, InstanceId: me, ...(device && { Device: device }), Force: true })),
    );
    await calls.waitUntil(volume, (v) => !attachmentOn(v, me), `detached from ${me}`, deadline, log, progress);
  }

  /**
   * Until the attachment is done. The kernel shows the volume's device (by volume id) the moment
   * EC2 finishes, seconds before a backed-off DescribeVolumes would say so: whichever sees it first
   * ends the wait, and the device check costs no AWS call.
   */
  private async attached(volume: EbsVolume, device: string, giveUpAt: number, log: Logger): Promise<void> {
    const { calls, me } = this.deps;
    const done = new AbortController();
    const described = calls.waiter.waitFor(volume.id, (v) => attachmentOn(v, me)?.State === 'attached', {
      deadline: giveUpAt,
      what: `${volume.id} attached to ${me} as ${device}`,
      log,
      signal: done.signal,
    });
    const appeared = deviceAppears(this.deps.host, volume.id, giveUpAt, done.signal);
    try {
      await Promise.race([described, appeared.then((found) => (found ? undefined : described))]);
    } finally {
      done.abort(new Error('attachment seen'));
      described.catch(() => undefined);
    }
  }

  /** A retried AttachVolume whose first try went through (a 5xx after the fact) finds the volume ours already. */
  private async attachedAs(volume: EbsVolume, device: string, deadline: number, log: Logger): Promise<EbsAttachment | undefined> {
    const now = await this.deps.catalog.lookup(volume.name, deadline, log);
    const ours = now?.id === volume.id && now.attachment?.instanceId === this.deps.me && now.attachment.device === device;
    return ours ? now.attachment : undefined;
  }

  /**
   * This instance's block-device mappings: the names a new attachment must not take. Attaches that
   * start together share one DescribeInstances; the allocator keeps each one's pick from the others.
   */
  private blockDeviceNames(deadline: number, log: Logger): Promise<string[]> {
    return this.mappings.run(() => this.describeBlockDeviceNames(deadline, log));
  }

  private async describeBlockDeviceNames(deadline: number, log: Logger): Promise<string[]> {
    const { calls, me } = this.deps;
    const out = await calls.aws('DescribeInstances', { deadline, log }, { instance: me }, () =>
      calls.ec2.send(new DescribeInstancesCommand({ InstanceIds: [me] })),
    );
    return (out.Reservations ?? [])
      .flatMap((r) => r.Instances ?? [])
      .flatMap((i) => i.BlockDeviceMappings ?? [])
      .map((m) => m.DeviceName)
      .filter((n): n is string => n !== undefined);
  }
}
