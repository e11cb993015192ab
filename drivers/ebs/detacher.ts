import { DetachVolumeCommand } from '@aws-sdk/client-ec2';
import { Ec2Code, hasCode, isNotFound } from '../../aws/errors.js';
import { WaitTimeoutError } from '../../aws/volume-waiter.js';
import type { OperationContext } from '../../core/context.js';
import { delay } from '../../core/delay.js';
import { PendingError, VolumeBusyError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { EbsVolume } from '../../core/schema/ebs-volume.js';
import type { Host } from '../../host/host.js';
import type { SnapshotStore } from '../../snapshot/snapshot-store.js';
import { BackgroundDetach } from './background-detach.js';
import type { DeviceNameAllocator } from './device-names.js';
import { BACKGROUND_LIMIT_MS, attachmentOn, type EbsCalls } from './ebs-calls.js';
import type { VolumeCatalog } from './volume-catalog.js';

/** How soon a detach a fresh view does not confirm yet is looked at again. */
const DETACH_RECHECK_MS = 250;
/** CreateSnapshot before the detach is given this long; past it the detach goes first. */
const START_LIMIT_MS = 5000;
/** How long an Unmount waits for its snapshot to be recorded before it answers. */
const RECORD_WAIT_MS = 5000;

/** One Unmount's snapshot on unmount: started once, before its first DetachVolume. */
interface UnmountSnapshot {
  started?: Promise<string | undefined>;
}

export interface DetacherDeps {
  calls: EbsCalls;
  host: Host;
  catalog: VolumeCatalog;
  names: DeviceNameAllocator;
  snapshots: SnapshotStore;
  me: string;
  /** STOWAGE_SNAPSHOT_ON_UNMOUNT: snapshot after a clean unmount, so a later cross-zone move skips the snapshot wait. */
  snapshotOnUnmount: boolean;
  /** STOWAGE_SNAPSHOT_RETAIN: snapshots kept per volume. */
  snapshotRetain: number;
}

/** Unmount (invariant 4): sync + umount, then detach; never detach while anything is mounted. */
export class Detacher {
  private readonly background = new BackgroundDetach();
  private readonly snapshotting = new Map<string, Promise<string | undefined>[]>();

  constructor(private readonly deps: DetacherDeps) {}

  /**
   * Invariant 8: once the umount succeeded the reference may go, so a detach that fails (EC2
   * throttling, a detach that outlives the request) is finished in the background, not thrown.
   */
  async unmount(name: string, mountpoint: string, ctx: OperationContext): Promise<void> {
    const host = this.deps.host.withLog(ctx.log);
    // A busy umount throws (naming what holds it) before anything is detached.
    const wasMounted = (await host.mountAt(mountpoint)) !== undefined;
    if (wasMounted) await host.unmount(mountpoint);
    // One snapshot per Unmount, however many attempts its detach takes.
    const snapshot: UnmountSnapshot | undefined = this.deps.snapshotOnUnmount ? {} : undefined;
    try {
      await this.detach(name, wasMounted, ctx, snapshot);
    } catch (err) {
      ctx.log.warn({ err }, 'unmounted; the detach goes on in the background');
      this.background.start(name, ctx.log, (attempt) => this.detach(name, true, attempt, snapshot));
    }
  }

  /** The detach left to the background for `name` stops; the attempt in progress ends first. */
  cancelBackground(name: string): Promise<void> {
    return this.background.cancel(name);
  }

  stop(): Promise<void> {
    return this.background.stopAll();
  }

  /**
   * `wasMounted`: this node had it mounted, so it is attached here whatever a lagging Describe says
   * (EC2 is eventually consistent); DetachVolume, which acts on EC2's current state, decides.
   */
  private async detach(name: string, wasMounted: boolean, ctx: OperationContext, snapshot: UnmountSnapshot | undefined): Promise<void> {
    const { calls, catalog, me } = this.deps;
    const log = ctx.log;
    try {
      const volume = await catalog.lookup(name, ctx.deadline, log);
      const seen = volume?.attachment?.instanceId === me ? volume.attachment : undefined;
      if (!volume && wasMounted) throw new PendingError(`unmounted, but EC2 does not show volume ${name} yet to detach it; it goes on`, { instance: me });
      const mine = seen ?? (wasMounted ? { instanceId: me, state: 'attached', device: undefined, attachTime: undefined } : undefined);
      if (!volume || !mine) {
        log.info({ volumeId: volume?.id }, 'unmounted; volume not attached here, nothing to detach');
        return;
      }
      const context = { volumeId: volume.id, instance: me, device: mine.device };
      if (mine.state !== 'detaching') {
        await this.refuseIfMounted(volume, mine.device);
        if (snapshot) await (snapshot.started ??= this.startUnmountSnapshot(volume, log));
        await calls.aws('DetachVolume', ctx, context, () => calls.ec2.send(new DetachVolumeCommand({ VolumeId: volume.id, InstanceId: me }))).catch(
          (err: unknown) => {
            // A retry of a DetachVolume that went through finds it detaching or detached.
            if (!hasCode(err, Ec2Code.IncorrectState, Ec2Code.AttachmentNotFound)) throw err;
          },
        );
        if (mine.device) this.deps.names.freed(mine.device);
      }
      try {
        // A lagging Describe can show the volume as it was before this attach: "detached" is
        // believed only on a fresh view (EC2 is eventually consistent).
        for (;;) {
          await calls.waiter.waitFor(volume.id, (v) => !attachmentOn(v, me), { deadline: ctx.deadline, what: `${volume.id} detached from ${me}`, log, ...(ctx.cancel && { signal: ctx.cancel }) });
          const now = await calls.reads.fresh(volume.id, ctx);
          if (now?.attachment?.instanceId !== me) break;
          if (Date.now() >= ctx.deadline) throw new WaitTimeoutError(`${volume.id} detached from ${me}`, undefined);
          await delay(Math.min(DETACH_RECHECK_MS, ctx.deadline - Date.now()), ctx.cancel);
        }
      } catch (err) {
        if (!(err instanceof WaitTimeoutError)) throw err;
        throw new PendingError(`unmounted, but EC2 is still detaching ${volume.id} from ${me}; it goes on`, context);
      }
      log.info(context, 'volume unmounted and detached');
      if (snapshot) {
        const recorded = this.recordUnmountSnapshot(volume, snapshot.started, log);
        this.track(volume.name, recorded.then((taken) => taken && this.pruneAfterUnmount(volume, taken, log)));
        // A Mount elsewhere that starts once this Unmount answered finds the record and restores
        // from it rather than taking a snapshot of its own; a slow record goes on in the background.
        await Promise.race([recorded, delay(Math.min(RECORD_WAIT_MS, ctx.deadline - Date.now()), ctx.cancel)]);
      }
    } finally {
      catalog.invalidate();
    }
  }

  /**
   * Invariant 6, started early: once the umount flushed the filesystem and nothing holds the device
   * (refuseIfMounted), the data is final, so the snapshot's point in time may precede the detach.
   * EBS's fixed cost per snapshot then runs while EC2 detaches, and a move that follows waits for
   * less of it. Never throws: a snapshot that could not start is taken after the detach instead.
   */
  private startUnmountSnapshot(volume: EbsVolume, log: Logger): Promise<string | undefined> {
    const started = this.deps.snapshots
      .create(volume, 'unmount', { deadline: Date.now() + START_LIMIT_MS, log })
      .then((taken) => taken.id)
      .catch((err: unknown) => {
        log.warn({ volumeId: volume.id, err }, 'snapshot on unmount could not start before the detach; it is taken after it');
        return undefined;
      });
    this.track(volume.name, started);
    return started;
  }

  /**
   * After the confirmed detach: the snapshot is recorded as the volume's current data, so a later
   * cross-zone Mount restores from it without waiting for a snapshot. A failure costs only that
   * head start (the move takes a snapshot itself).
   */
  private async recordUnmountSnapshot(volume: EbsVolume, started: Promise<string | undefined> | undefined, log: Logger): Promise<string | undefined> {
    const { snapshots } = this.deps;
    const step = { deadline: Date.now() + BACKGROUND_LIMIT_MS, log };
    const began = Date.now();
    let taken = started && (await started);
    try {
      taken ??= (await snapshots.create(volume, 'unmount', step)).id;
      const current = await snapshots.markCurrent(volume, taken, step);
      if (current !== taken) {
        await snapshots.delete(taken, step);
        return undefined;
      }
      log.info({ volumeId: volume.id, snapshotId: taken, generation: volume.generation, ms: Date.now() - began }, 'snapshot on unmount started and recorded');
      return taken;
    } catch (err) {
      // The volume was removed meanwhile: its moving snapshot goes with it, never left behind.
      if (taken !== undefined && isNotFound(err)) {
        await snapshots.delete(taken, step).catch((cleanup: unknown) => log.warn({ err: cleanup, snapshotId: taken }, 'snapshot of a removed volume not deleted'));
        return undefined;
      }
      log.warn({ volumeId: volume.id, err }, 'snapshot on unmount failed; a cross-zone move of this volume will take a snapshot itself');
      return taken;
    }
  }

  /** Retention after the record; the snapshot stays this node's to name to a Remove (its id is returned). */
  private async pruneAfterUnmount(volume: EbsVolume, taken: string, log: Logger): Promise<string> {
    const step = { deadline: Date.now() + BACKGROUND_LIMIT_MS, log };
    await this.deps.snapshots.prune(volume.name, this.deps.snapshotRetain, new Set([taken]), step).catch((err: unknown) => {
      log.warn({ err, volumeId: volume.id }, 'retention of old snapshots after the unmount failed; the next one tries again');
    });
    return taken;
  }

  /** The snapshots this node's Unmounts of `name` took (a Describe may not show them yet), waited for until `deadline`. */
  async afterUnmountSnapshots(name: string, deadline: number): Promise<string[]> {
    const late = delay(deadline - Date.now()).then(() => undefined);
    const ids = await Promise.all((this.snapshotting.get(name) ?? []).map((work) => Promise.race([work, late])));
    return ids.filter((id): id is string => id !== undefined);
  }

  private track(name: string, work: Promise<string | undefined>): void {
    this.snapshotting.set(name, [...(this.snapshotting.get(name) ?? []), work]);
    void work.then(() => {
      const left = (this.snapshotting.get(name) ?? []).filter((w) => w !== work);
      if (left.length > 0) this.snapshotting.set(name, left);
      else this.snapshotting.delete(name);
    });
  }

  /**
   * Invariant 4: never detach a device that is mounted anywhere on this node. Our mountinfo names
   * a mount we can see; only the exclusive open sees one in another mount namespace (a container,
   * an `nsenter` by hand) or a claim by the kernel.
   */
  private async refuseIfMounted(volume: EbsVolume, requested: string | undefined): Promise<void> {
    const device = await this.deps.host.findDevice(volume.id, requested);
    if (!device) return;
    const context = { volumeId: volume.id, device };
    const still = (await this.deps.host.mounts()).find((m) => m.source === device);
    if (still) {
      throw new VolumeBusyError(`device ${device} of volume ${volume.name} is still mounted at ${still.target}; not detaching it`, context);
    }
    const holder = await this.deps.host.deviceHeldBy(device);
    if (holder !== undefined) {
      throw new VolumeBusyError(`device ${device} of volume ${volume.name} is held elsewhere (${holder}); not detaching it`, context);
    }
  }
}
