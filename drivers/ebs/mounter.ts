import { randomUUID } from 'node:crypto';
import { CreateTagsCommand } from '@aws-sdk/client-ec2';
import type { OperationContext } from '../../core/context.js';
import { Tags } from '../../core/schema/tags.js';
import { CloudError, DataSafetyError, PendingError, VolumeBusyError, VolumeConflictError, VolumeNotFoundError } from '../../core/errors.js';
import { isNotFound } from '../../aws/errors.js';
import type { Logger } from '../../core/log.js';
import { describeDuplicates, type EbsVolume } from '../../core/schema/ebs-volume.js';
import type { Host } from '../../host/host.js';
import type { SnapshotStore } from '../../snapshot/snapshot-store.js';
import { describeMove, type ZoneMover } from '../../snapshot/zone-move.js';
import type { Attacher } from './attacher.js';
import { BACKGROUND_LIMIT_MS, attachmentOn, type EbsCalls } from './ebs-calls.js';
import { toMiB, type FilesystemGrowth } from './fs-growth.js';
import type { HeadStart } from './head-start.js';
import type { HolderWait } from './holder.js';
import type { MountProgress } from './mount-flight.js';
import { mountedFromVolume, prepareAndMount, waitForDevice } from './prepare-device.js';
import type { VolumeCatalog } from './volume-catalog.js';

/** How long a device may take to show up on the node after EC2 says `attached`. */
const DEVICE_APPEAR_MS = 30_000;

export interface MounterDeps {
  calls: EbsCalls;
  host: Host;
  catalog: VolumeCatalog;
  snapshots: SnapshotStore;
  mover: ZoneMover;
  attacher: Attacher;
  holder: HolderWait;
  headStart: HeadStart;
  growth: FilesystemGrowth;
  me: string;
  zone: string;
  pollInitialMs: number;
}

/**
 * One Mount's work, start to end: wait out another holder, move the volume here if it is in another
 * zone, attach it (or reuse this instance's attachment), then check, format if blank, and mount.
 */
export class Mounter {
  constructor(private readonly deps: MounterDeps) {}

  async mount(name: string, mountpoint: string, ctx: OperationContext, progress: MountProgress): Promise<string> {
    const { calls, catalog, snapshots, me, zone } = this.deps;
    const log = ctx.log;
    const deadline = Math.max(ctx.deadline, Date.now() + BACKGROUND_LIMIT_MS);
    try {
      let volume = await catalog.lookup(name, deadline, log);
      if (!volume) throw new VolumeNotFoundError(name);
      progress.context = { volumeId: volume.id, zone: volume.zone };
      if (volume.duplicates) throw new VolumeConflictError(describeDuplicates(name, volume.duplicates), progress.context);
      // Invariant 11: tags are input; a value the option rules refuse (say, a mount option off the
      // allow-list planted by whoever may tag volumes) keeps the volume from being mounted at all.
      if (volume.tagProblems.length > 0) {
        throw new DataSafetyError(`volume ${name} carries tags that break the option rules, so it is not mounted: ${volume.tagProblems.join('; ')}`, progress.context);
      }
      // Mounted here already (the work of a Mount that answered Pending finished meanwhile): the
      // kernel says so, whatever a lagging Describe shows (EC2 is eventually consistent).
      const shownHere = volume.attachment?.instanceId === me ? volume.attachment.device : undefined;
      if (await mountedFromVolume(this.deps.host, volume.id, mountpoint, shownHere)) {
        log.info({ volumeId: volume.id, mountpoint }, 'volume already mounted here');
        return mountpoint;
      }
      // Not shown at all is not "created": a lagging Describe may answer from before the volume was.
      if (volume.state === 'creating') volume = await calls.waitUntil(volume, (v) => v !== undefined && v.State !== 'creating', 'to become available', deadline, log, progress);
      if (volume.attachment && volume.attachment.instanceId !== me) {
        // A lagging Describe may still show a holder that let go: look on a fresh view before waiting on it.
        progress.doing = `checking who holds ${volume.id}`;
        volume = (await calls.reads.fresh(volume.id, { deadline, log })) ?? volume;
        if (volume.attachment && volume.attachment.instanceId !== me) {
          const held = volume;
          // A move will follow: a holder slow to let go gives its snapshot a head start.
          const whileHeld = held.zone !== zone ? () => this.deps.headStart.take(held, { deadline, log }) : undefined;
          volume = await this.deps.holder.takeOver(held, ctx.deadline, deadline, log, progress, whileHeld);
        }
      }
      // A copy another node is making elsewhere does not stop us: attaching here makes its move give up.
      if (volume.zone !== zone) volume = await this.moveAcrossZones(volume, deadline, log, progress);
      // Invariant 1: an attachment is ours only if its instance is ours; a third node may have won the volume meanwhile.
      if (volume.attachment && volume.attachment.instanceId !== me) {
        const other = volume.attachment.instanceId;
        throw new VolumeBusyError(`volume ${name} was attached to instance ${other} while this node waited for it`, { volumeId: volume.id, instance: other, zone: volume.zone });
      }
      let device: string;
      let attachTime: string | undefined;
      const mine = volume.attachment;
      if (mine && mine.state !== 'detaching') {
        // Attached here already (a restart, or a Mount that answered Pending): reuse the attachment,
        // or undo it if it stays stuck in attaching.
        ({ device, attachTime } = mine.state === 'attached' ? { device: mine.device ?? '', attachTime: mine.attachTime } : await this.deps.attacher.resume(volume, mine, deadline, log, progress));
        // A Mount that failed after attaching may have left the record of a snapshot that no longer holds the data.
        if (volume.snapshotCurrent || volume.blank) await snapshots.forget(volume.id, { deadline, log });
        log.info({ volumeId: volume.id, device }, 'volume already attached to this instance');
      } else {
        if (mine) await calls.waitUntil(volume, (v) => !attachmentOn(v, me), `detached from ${me}`, deadline, log, progress);
        // Its data is about to change: no snapshot holds it any more, and it is no longer blank. That
        // must be on record before the first write, not before the attach: both go out together.
        // (Nodes of earlier versions read a blank tag as "never written": it must go, even though
        // the formatted mark written after mkfs says the same.)
        const forgotten = volume.snapshotCurrent || volume.blank ? snapshots.forget(volume.id, { deadline, log }) : Promise.resolve();
        const [attached] = await Promise.allSettled([this.deps.attacher.attach(volume, deadline, log, progress), forgotten]);
        await forgotten;
        if (attached.status === 'rejected') throw attached.reason;
        ({ device, attachTime } = attached.value);
      }
      progress.doing = `preparing the device of ${volume.id} (${device})`;
      const found = await waitForDevice(this.deps.host, volume, device, Math.min(deadline, Date.now() + DEVICE_APPEAR_MS), this.deps.pollInitialMs);
      const attached = volume;
      await prepareAndMount(this.deps.host, volume, found, mountpoint, log, (formatted, size) => this.markBeforeWrites(attached, attachTime, formatted, size, deadline, log));
      await this.deps.growth.afterMount(volume, mountpoint, log);
      log.info({ volumeId: volume.id, device, mountpoint }, 'volume mounted');
      return mountpoint;
    } catch (err) {
      // A volume a Describe showed but EC2 no longer has: the read lagged (a move retired it, EC2
      // is eventually consistent). Not "no such volume": the name lives on; the next Mount sees it.
      if (err instanceof CloudError && isNotFound(err)) {
        throw new PendingError(`volume ${name} changed while this Mount looked at it (${err.message}); mount again`, { ...progress.context, requestId: err.context.requestId });
      }
      throw err;
    } finally {
      catalog.invalidate();
    }
  }

  /**
   * One CreateTags, confirmed before the filesystem is mounted and so before any write of this
   * attachment: the attachment whose writes the volume now holds (issue 15.2: a snapshot that does
   * not cover it is never restored from), and the formatted mark after its first mkfs (invariant 9).
   * The filesystem's size rides along when it changed, never in a call of its own.
   */
  private async markBeforeWrites(volume: EbsVolume, attachTime: string | undefined, formatted: boolean, filesystemBytes: number | undefined, deadline: number, log: Logger): Promise<void> {
    const { calls } = this.deps;
    // Where EC2 gives no AttachTime, a mark of our own tells this attachment from the others.
    const mark = attachTime ?? randomUUID();
    const tags: { Key: string; Value: string }[] = [
      ...(volume.lastAttach !== mark ? [{ Key: Tags.lastAttach, Value: mark }] : []),
      ...(formatted ? [{ Key: Tags.formatted, Value: 'true' }] : []),
    ];
    if (tags.length === 0) return;
    const mib = filesystemBytes !== undefined ? toMiB(filesystemBytes) : undefined;
    if (mib !== undefined && mib !== volume.filesystemMiB) tags.push({ Key: Tags.filesystemMiB, Value: String(mib) });
    await calls.aws('CreateTags', { deadline, log }, { volumeId: volume.id }, () => calls.ec2.send(new CreateTagsCommand({ Resources: [volume.id], Tags: tags })));
  }

  /** Invariant 5: snapshot → copy in this zone → retire the old volume (snapshot/zone-move.ts). */
  private async moveAcrossZones(volume: EbsVolume, deadline: number, log: Logger, progress: MountProgress): Promise<EbsVolume> {
    const { zone } = this.deps;
    const started = Date.now();
    log.info({ volumeId: volume.id, from: volume.zone, to: zone }, 'volume is in another zone: moving it here');
    const moved = await this.deps.mover.move(volume.name, zone, { deadline, log }, (move) => {
      progress.move = move;
      progress.doing = describeMove(move);
    });
    progress.move = undefined;
    progress.context = { volumeId: moved.id, zone: moved.zone };
    log.info({ volumeId: moved.id, from: volume.zone, to: zone, ms: Date.now() - started }, 'volume moved across zones');
    return moved;
  }
}
