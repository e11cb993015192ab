import path from 'node:path';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { Driver, VolumeInfo } from '../driver.js';
import type { Host } from '../../host/host.js';
import type { OperationContext } from '../../core/context.js';
import { delay } from '../../core/delay.js';
import { PendingError, VolumeBusyError, VolumeConflictError } from '../../core/errors.js';
import { describeDuplicates } from '../../core/schema/ebs-volume.js';
import type { Logger } from '../../core/log.js';
import type { WorkMetrics } from '../../core/metrics.js';
import type { VolumeOptions } from '../../core/volume-options.js';
import type { RetryPolicy } from '../../aws/call.js';
import type { CallCounter } from '../../aws/call-counter.js';
import type { NodeIdentity } from '../../aws/identity.js';
import { VolumeReads } from '../../aws/volume-reads.js';
import { VolumeWaiter } from '../../aws/volume-waiter.js';
import { SnapshotStore } from '../../snapshot/snapshot-store.js';
import { ZoneMover, type MoveStep } from '../../snapshot/zone-move.js';
import { Attacher } from './attacher.js';
import { Detacher } from './detacher.js';
import { DeviceNameAllocator } from './device-names.js';
import { EbsCalls } from './ebs-calls.js';
import { FilesystemGrowth } from './fs-growth.js';
import { ProgressCache } from './progress-cache.js';
import { Fencing, type FenceMode } from './fencing.js';
import { LossWatch } from './loss-watch.js';
import { HeadStart } from './head-start.js';
import { HolderWait } from './holder.js';
import { MountFlight } from './mount-flight.js';
import { Mounter } from './mounter.js';
import { VolumeCatalog } from './volume-catalog.js';
import { VolumeCreator } from './volume-creator.js';
import { VolumeRemover } from './volume-remover.js';
import { VolumeViews } from './volume-views.js';
import { createBackupScheduler, type BackupOptions, type BackupScheduler } from './backup-scheduler.js';

export interface EbsDriverDeps {
  ec2: EC2Client;
  host: Host;
  identity: NodeIdentity;
  cluster: string;
  /** Volumes mount at `${mountRoot}/${name}` (the managed plugin's PropagatedMount). */
  mountRoot: string;
  counter: CallCounter;
  log: Logger;
  /** STOWAGE_FENCE_AFTER: a holder whose heartbeat has not changed for this long may be force-detached. */
  fenceAfterMs: number;
  /** STOWAGE_FENCE (default heartbeat). */
  fenceMode?: FenceMode;
  /** How long EC2 must keep showing a mounted volume as no longer ours before it is unmounted (default 10 s). */
  lossConfirmMs?: number;
  /** Default fenceAfterMs / 4, so three beats may fail before anyone fences this node. */
  heartbeatIntervalMs?: number;
  /** First poll of a volume state (default 1 s); a few ms on a zero-latency emulator. */
  pollInitialMs?: number;
  /** An attachment `attaching` this long is undone and retried on another name (default 90 s). */
  stuckAttachMs?: number;
  /** How old the List/Get cache may be (default 5 s). */
  cacheTtlMs?: number;
  retry?: RetryPolicy;
  now?: () => number;
  /** STOWAGE_SNAPSHOT_ON_UNMOUNT: snapshot after a clean unmount, so a later cross-zone move skips the snapshot wait. */
  snapshotOnUnmount?: boolean;
  /** STOWAGE_SNAPSHOT_RETAIN: snapshots kept per volume (default 1). */
  snapshotRetain?: number;
  /** Attachments in flight, fences and move stages for Prometheus (noMetrics when off). */
  metrics?: WorkMetrics;
  /** How often the volumes mounted here are checked for a device grown by a modification (default 30 s). */
  growCheckMs?: number;
  /** Tests: the cross-zone mover's crash hook (see ZoneMover). */
  afterMoveStep?: (step: MoveStep, name: string) => Promise<void> | void;
  /** Scheduled backups: how often the schedule is looked at, the DR copies, a test's hook in the freeze window. */
  backups?: BackupOptions;
}

export interface EbsDriver extends Driver {
  /** Starts the heartbeat on this node's instance (fencing needs it); stop() ends it and the background detaches. */
  start(): void;
  stop(): Promise<void>;
  /**
   * After a restart: detaches the volumes attached to this instance that nothing mounts here (a
   * crash between umount and detach). dockerd never repeats that Unmount, and this node's fresh
   * heartbeat would keep every other node from fencing, so nobody else could ever have them.
   */
  releaseUnmounted(ctx: OperationContext): Promise<void>;
}

/**
 * `backing=relocatable`: one EBS volume per name, attached to at most one instance, following its
 * task. A facade: each job has its room (create, views, the Mount in flight, mount work, attach,
 * holder, detach, remove), wired here.
 */
class EbsDriverImpl implements EbsDriver {
  readonly backing = 'relocatable' as const;
  private readonly me: string;
  private readonly catalog: VolumeCatalog;
  private readonly fencing: Fencing;
  private readonly flight = new MountFlight();
  private readonly views: VolumeViews;
  private readonly creator: VolumeCreator;
  private readonly mounter: Mounter;
  private readonly detacher: Detacher;
  private readonly remover: VolumeRemover;
  private readonly backups: BackupScheduler;
  private readonly growth: FilesystemGrowth;
  private readonly lossWatch: LossWatch;
  private lossTimer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: EbsDriverDeps) {
    const { ec2, counter, cluster, host, log, metrics } = deps;
    this.me = deps.identity.instanceId;
    const zone = deps.identity.zone;
    const now = deps.now ?? Date.now;
    const pollInitialMs = deps.pollInitialMs ?? 1000;
    const retry = deps.retry && { retry: deps.retry };
    this.catalog = new VolumeCatalog({ ec2, counter, cluster, ttlMs: deps.cacheTtlMs ?? 5000, now, ...retry });
    const waiter = new VolumeWaiter({ ec2, counter, log, initialDelayMs: pollInitialMs, ...retry });
    const reads = new VolumeReads({ ec2, counter, cluster, pollInitialMs, ...retry });
    const calls = new EbsCalls(ec2, counter, waiter, reads, cluster, deps.retry);
    this.fencing = new Fencing({
      ec2,
      counter,
      instanceId: this.me,
      fenceAfterMs: deps.fenceAfterMs,
      heartbeatIntervalMs: deps.heartbeatIntervalMs ?? deps.fenceAfterMs / 4,
      now,
      log,
      mode: deps.fenceMode ?? 'heartbeat',
    });
    const names = new DeviceNameAllocator({ now });
    const snapshots = new SnapshotStore({ ec2, counter, cluster, pollInitialMs, ...retry });
    const snapshotRetain = deps.snapshotRetain ?? 1;
    const mover = new ZoneMover({
      ec2,
      counter,
      cluster,
      snapshots,
      reads,
      waiter,
      named: (name, deadline, moveLog) => this.catalog.named(name, deadline, moveLog),
      retain: snapshotRetain,
      ...(metrics && { metrics }),
      ...retry,
      ...(deps.afterMoveStep && { afterStep: deps.afterMoveStep }),
    });
    const catalog = this.catalog;
    const attacher = new Attacher({ calls, host, catalog, names, me: this.me, stuckAttachMs: deps.stuckAttachMs ?? 90_000, ...(metrics && { metrics }) });
    const holder = new HolderWait({ calls, fencing: this.fencing, ...(metrics && { metrics }) });
    this.views = new VolumeViews((name) => this.mountpointOf(name), (name) => this.flight.moveOf(name), new ProgressCache(calls));
    this.creator = new VolumeCreator({ calls, catalog, cluster, zone });
    this.growth = new FilesystemGrowth({ host, calls, catalog, mountRoot: deps.mountRoot, log, intervalMs: deps.growCheckMs ?? 30_000 });
    this.mounter = new Mounter({ calls, host, catalog, snapshots, mover, attacher, holder, headStart: new HeadStart(snapshots), growth: this.growth, me: this.me, zone, pollInitialMs });
    this.detacher = new Detacher({ calls, host, catalog, names, snapshots, me: this.me, snapshotOnUnmount: deps.snapshotOnUnmount ?? false, snapshotRetain });
    this.remover = new VolumeRemover({ calls, host, catalog, snapshots, unmountSnapshots: (name, deadline) => this.detacher.afterUnmountSnapshots(name, deadline) });
    this.backups = createBackupScheduler({ catalog, snapshots, reads, host, me: this.me, mountRoot: deps.mountRoot, mountpointOf: (name) => this.mountpointOf(name), log, now, ...deps.backups });
    this.lossWatch = new LossWatch({ host, catalog, me: this.me, mountRoot: deps.mountRoot, log, confirmMs: deps.lossConfirmMs ?? 10_000, mounting: (name) => this.flight.has(name) });
  }

  start(): void {
    this.fencing.start();
    this.backups.start();
    this.growth.start();
    this.lossTimer ??= setInterval(() => void this.lossWatch.check(), this.deps.heartbeatIntervalMs ?? this.deps.fenceAfterMs / 4);
    this.lossTimer.unref();
  }

  stop(): Promise<void> {
    this.fencing.stop();
    clearInterval(this.lossTimer);
    this.lossTimer = undefined;
    return Promise.all([this.detacher.stop(), this.growth.stop(), this.backups.stop()]).then(() => undefined);
  }

  async releaseUnmounted(ctx: OperationContext): Promise<void> {
    const [volumes, mounts] = await Promise.all([this.catalog.all(ctx.deadline, ctx.log), this.deps.host.mounts()]);
    const mounted = new Set(mounts.map((m) => m.target));
    for (const volume of volumes.values()) {
      if (volume.attachment?.instanceId !== this.me || mounted.has(this.mountpointOf(volume.name))) continue;
      const log = ctx.log.child({ volume: volume.name });
      log.warn({ volumeId: volume.id, device: volume.attachment.device }, 'attached to this instance but mounted nowhere here (left by a crash): detaching');
      await this.unmount(volume.name, { ...ctx, log }).catch((err: unknown) => log.error({ err, volumeId: volume.id }, 'could not detach a volume left attached by a crash'));
    }
  }

  mountpointOf(name: string): string {
    return path.join(this.deps.mountRoot, name);
  }

  create(name: string, options: VolumeOptions, ctx: OperationContext): Promise<void> {
    return this.creator.create(name, options, ctx);
  }

  async get(name: string, ctx: OperationContext): Promise<VolumeInfo | undefined> {
    // A miss in the cache is checked with EC2: another node may have created the volume since, and
    // a wrong "no such volume" makes dockerd create a duplicate or fail a Mount.
    const volume = (await this.catalog.all(ctx.deadline, ctx.log)).get(name) ?? (await this.catalog.lookup(name, ctx.deadline, ctx.log));
    if (!volume) return undefined;
    if (volume.duplicates) throw new VolumeConflictError(describeDuplicates(name, volume.duplicates), { volumeId: volume.id });
    const mounted = await this.deps.host.mountAt(this.mountpointOf(name));
    return this.views.detailed(volume, mounted !== undefined, ctx);
  }

  async list(ctx: OperationContext): Promise<VolumeInfo[]> {
    const [volumes, mounts] = await Promise.all([this.catalog.all(ctx.deadline, ctx.log), this.deps.host.mounts()]);
    const targets = new Set(mounts.map((m) => m.target));
    return [...volumes.values()].map((v) => this.views.info(v, targets.has(this.mountpointOf(v.name))));
  }

  mount(name: string, ctx: OperationContext): Promise<string> {
    return this.flight.mount(name, ctx, async (progress) => {
      progress.doing = 'stopping the detach left to the background';
      await this.detacher.cancelBackground(name);
      return this.growth.excluding(name, () => this.mounter.mount(name, this.mountpointOf(name), ctx, progress));
    });
  }

  /** Mounted at its mountpoint from this volume's own device, attached to this instance. */
  async isMounted(name: string, ctx: OperationContext): Promise<boolean> {
    const mounted = await this.deps.host.mountAt(this.mountpointOf(name));
    if (!mounted) return false;
    const volume = (await this.catalog.all(ctx.deadline, ctx.log)).get(name) ?? (await this.catalog.lookup(name, ctx.deadline, ctx.log));
    const mine = volume?.attachment?.instanceId === this.me ? volume.attachment : undefined;
    if (!volume || !mine) return false;
    return mounted.source === (await this.deps.host.findDevice(volume.id, mine.device));
  }

  async unmount(name: string, ctx: OperationContext): Promise<void> {
    // A Mount that answered "pending" may still be attaching: let it finish, then undo all of it.
    const mounting = this.flight.running(name);
    if (mounting) {
      ctx.log.info({ doing: mounting.progress.doing }, 'waiting for the mount in progress before unmounting');
      // Within this Unmount's own deadline only: it holds the volume's lock meanwhile.
      const ended = await Promise.race([mounting.promise.then(() => true, () => true), delay(ctx.deadline - Date.now()).then(() => false)]);
      if (!ended) {
        throw new PendingError(`a mount of ${name} is still in progress (${mounting.progress.doing}); unmount again once it ends`, mounting.progress.context);
      }
    }
    await this.backups.withVolume(name, () => this.growth.excluding(name, () => this.detacher.unmount(name, this.mountpointOf(name), ctx)));
    this.backups.unmounted(name);
  }

  async remove(name: string, ctx: OperationContext): Promise<void> {
    if (this.flight.has(name)) throw new VolumeBusyError(`volume ${name} is being mounted on this node`, {});
    return this.growth.excluding(name, () => this.remover.remove(name, this.mountpointOf(name), ctx));
  }
}

export function createEbsDriver(deps: EbsDriverDeps): EbsDriver {
  return new EbsDriverImpl(deps);
}
