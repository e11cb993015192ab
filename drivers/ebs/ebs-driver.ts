import { rmdir } from 'node:fs/promises';
import path from 'node:path';
import {
  AttachVolumeCommand,
  CreateVolumeCommand,
  DeleteVolumeCommand,
  DescribeInstancesCommand,
  DetachVolumeCommand,
  type EC2Client,
  type Volume,
  type VolumeType,
} from '@aws-sdk/client-ec2';
import type { Driver, VolumeInfo } from '../driver.js';
import type { OperationContext } from '../../core/context.js';
import type { Host, MountEntry } from '../../host/host.js';
import { CloudError, PendingError, VolumeBusyError, VolumeConflictError, VolumeNotFoundError, type ErrorContext, type StowageError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { WorkMetrics } from '../../core/metrics.js';
import { EBS_LIMITS, type VolumeOptions } from '../../core/volume-options.js';
import { callAws, type RetryPolicy } from '../../aws/call.js';
import type { CallCounter } from '../../aws/call-counter.js';
import { SharedCall } from '../../aws/shared-call.js';
import { Ec2Code, hasCode, isNotFound } from '../../aws/errors.js';
import type { NodeIdentity } from '../../aws/identity.js';
import { VolumeWaiter, WaitTimeoutError } from '../../aws/volume-waiter.js';
import { SnapshotStore } from '../../snapshot/snapshot-store.js';
import { ZoneMover, describeMove, type MoveProgress, type MoveStep } from '../../snapshot/zone-move.js';
import { DeviceNameAllocator } from './device-names.js';
import { deviceAppears, prepareAndMount, waitForDevice } from './prepare-device.js';
import { Fencing } from './fencing.js';
import { VolumeCatalog } from './volume-catalog.js';
import { Tags } from '../../core/schema/tags.js';
import { clientToken } from '../../core/schema/client-token.js';
import { optionDifferences, optionsOf, toEbsVolume, volumeTagSpecification, volumeTags, type EbsVolume } from '../../core/schema/ebs-volume.js';

export interface EbsDriverDeps {
  ec2: EC2Client;
  host: Host;
  identity: NodeIdentity;
  cluster: string;
  /** Volumes mount at `${mountRoot}/${name}` (the managed plugin's PropagatedMount). */
  mountRoot: string;
  counter: CallCounter;
  log: Logger;
  /** STOWAGE_FENCE_AFTER: a holder whose heartbeat is older may be force-detached. */
  fenceAfterMs: number;
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
  /** Tests: the cross-zone mover's crash hook (see ZoneMover). */
  afterMoveStep?: (step: MoveStep, name: string) => Promise<void> | void;
}

export interface EbsDriver extends Driver {
  /** Starts the heartbeat on this node's instance (fencing needs it); stop() ends it. */
  start(): void;
  stop(): void;
  /**
   * After a restart: detaches the volumes attached to this instance that nothing mounts here (a
   * crash between umount and detach). dockerd never repeats that Unmount, and this node's fresh
   * heartbeat would keep every other node from fencing, so nobody else could ever have them.
   */
  releaseUnmounted(ctx: OperationContext): Promise<void>;
}

/** Attach work a Mount left running keeps going this long (from its start) before it gives up. */
const BACKGROUND_LIMIT_MS = 10 * 60_000;
/** How often a Mount waiting for another holder asks again whether that holder may be fenced. */
const HOLDER_RECHECK_MS = 5000;
/** Attempts on fresh device names before an attach is given up. */
const MAX_ATTACH_ATTEMPTS = 3;
/** How long a device may take to show up on the node after EC2 says `attached`. */
const DEVICE_APPEAR_MS = 30_000;
/** Client tokens tried in turn when EC2 answers an old token with the deleted volume it made. */
const MAX_TOKEN_REUSE = 5;

/** What a Mount in flight is doing, for the answer a Mount gets when its deadline comes first. */
interface MountProgress {
  doing: string;
  context: ErrorContext;
  /** Set while waiting for another instance to let go: the answer then is "busy", naming it. */
  holder?: { instance: string; zone: string; reason: string };
  /** Set while the volume moves across zones: the answer then names the stage and progress. */
  move?: MoveProgress;
}

interface MountWork {
  promise: Promise<string>;
  progress: MountProgress;
}

function attachmentOn(volume: Volume | undefined, instanceId: string) {
  return volume?.Attachments?.find((a) => a.InstanceId === instanceId && a.State !== 'detached');
}

/** `backing=relocatable`: one EBS volume per name, attached to at most one instance, following its task. */
class EbsDriverImpl implements EbsDriver {
  readonly backing = 'relocatable' as const;
  private readonly me: string;
  private readonly zone: string;
  private readonly now: () => number;
  private readonly stuckAttachMs: number;
  private readonly pollInitialMs: number;
  private readonly catalog: VolumeCatalog;
  private readonly waiter: VolumeWaiter;
  private readonly fencing: Fencing;
  private readonly names: DeviceNameAllocator;
  private readonly snapshots: SnapshotStore;
  private readonly mover: ZoneMover;
  /** One Mount's work per volume; a later Mount of the same volume joins it. */
  private readonly inflight = new Map<string, MountWork>();
  private readonly infos = new WeakMap<EbsVolume, VolumeInfo>();
  private readonly mappings = new SharedCall<string[]>();

  constructor(private readonly deps: EbsDriverDeps) {
    this.me = deps.identity.instanceId;
    this.zone = deps.identity.zone;
    this.now = deps.now ?? Date.now;
    this.stuckAttachMs = deps.stuckAttachMs ?? 90_000;
    this.pollInitialMs = deps.pollInitialMs ?? 1000;
    this.catalog = new VolumeCatalog({ ec2: deps.ec2, counter: deps.counter, cluster: deps.cluster, ttlMs: deps.cacheTtlMs ?? 5000, now: this.now });
    this.waiter = new VolumeWaiter({
      ec2: deps.ec2,
      counter: deps.counter,
      log: deps.log,
      initialDelayMs: this.pollInitialMs,
      ...(deps.retry && { retry: deps.retry }),
    });
    this.fencing = new Fencing({
      ec2: deps.ec2,
      counter: deps.counter,
      instanceId: this.me,
      fenceAfterMs: deps.fenceAfterMs,
      heartbeatIntervalMs: deps.heartbeatIntervalMs ?? deps.fenceAfterMs / 4,
      now: this.now,
      log: deps.log,
    });
    this.names = new DeviceNameAllocator({ now: this.now });
    this.snapshots = new SnapshotStore({ ec2: deps.ec2, counter: deps.counter, cluster: deps.cluster, pollInitialMs: this.pollInitialMs, ...(deps.retry && { retry: deps.retry }) });
    this.mover = new ZoneMover({
      ec2: deps.ec2,
      counter: deps.counter,
      cluster: deps.cluster,
      snapshots: this.snapshots,
      waiter: this.waiter,
      named: (name, deadline, log) => this.catalog.named(name, deadline, log),
      retain: deps.snapshotRetain ?? 1,
      ...(deps.metrics && { metrics: deps.metrics }),
      ...(deps.retry && { retry: deps.retry }),
      ...(deps.afterMoveStep && { afterStep: deps.afterMoveStep }),
    });
  }

  start(): void {
    this.fencing.start();
  }

  stop(): void {
    this.fencing.stop();
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

  // ---- Create -------------------------------------------------------------------------------

  async create(name: string, options: VolumeOptions, ctx: OperationContext): Promise<void> {
    const existing = await this.catalog.lookup(name, ctx.deadline, ctx.log);
    if (existing) return this.confirmExisting(existing, options, ctx);
    const limits = EBS_LIMITS[options.ebstype];
    // Blank until its first attach: a cross-zone move of it then needs no snapshot.
    const tags = [...volumeTags(this.deps.cluster, name, 1, options), ...(options.snapshot === undefined ? [{ Key: Tags.blank, Value: 'true' }] : [])];
    try {
      for (let reuse = 0; reuse < MAX_TOKEN_REUSE; reuse++) {
        const created = await this.aws('CreateVolume', ctx, { zone: this.zone }, () =>
          this.deps.ec2.send(
            new CreateVolumeCommand({
              AvailabilityZone: this.zone,
              Size: options.size,
              VolumeType: options.ebstype as VolumeType,
              ...(limits.iops && options.iops !== undefined && { Iops: options.iops }),
              ...(limits.throughput && options.throughput !== undefined && { Throughput: options.throughput }),
              Encrypted: options.encrypted,
              ...(options.kmskeyid !== undefined && { KmsKeyId: options.kmskeyid }),
              ...(options.snapshot !== undefined && { SnapshotId: options.snapshot }),
              TagSpecifications: volumeTagSpecification(tags),
              ClientToken: clientToken(this.deps.cluster, name, 1, reuse),
            }),
          ),
        );
        const volumeId = created.VolumeId!;
        ctx.log.info({ volumeId, zone: this.zone, reuse }, 'EBS volume created');
        const ready = await this.waitCreated(name, volumeId, ctx);
        if (ready) return;
        ctx.log.info({ volumeId }, 'client token belonged to a deleted volume of this name; trying the next one');
      }
      throw new CloudError(`CreateVolume kept returning deleted volumes for ${name}`, 'IdempotentParameterMismatch', { zone: this.zone });
    } catch (err) {
      // Another node won the race with other parameters (or in another zone): judge its volume.
      if (!hasCode(err, Ec2Code.IdempotentParameterMismatch)) throw err;
      const winner = await this.catalog.lookup(name, ctx.deadline, ctx.log);
      if (!winner) throw err;
      return this.confirmExisting(winner, options, ctx);
    } finally {
      this.catalog.invalidate();
    }
  }

  /** Same options: nothing to do (but wait for `available`). Other options: a conflict naming them. */
  private async confirmExisting(existing: EbsVolume, options: VolumeOptions, ctx: OperationContext): Promise<void> {
    const differences = optionDifferences(options, optionsOf(existing));
    if (differences.length > 0) {
      throw new VolumeConflictError(
        `volume ${existing.name} already exists with other options: ${differences.join(', ')}`,
        { volumeId: existing.id, zone: existing.zone },
      );
    }
    ctx.log.debug({ volumeId: existing.id, zone: existing.zone }, 'volume exists with the same options');
    if (existing.state === 'creating') await this.waitCreated(existing.name, existing.id, ctx);
  }

  /** true once `available`; false when the volume is gone (an old client token's deleted volume). */
  private async waitCreated(name: string, volumeId: string, ctx: OperationContext): Promise<boolean> {
    let volume: Volume | undefined;
    try {
      volume = await this.waiter.waitFor(volumeId, (v) => v?.State !== 'creating', {
        deadline: ctx.deadline,
        what: `${volumeId} to become available`,
        log: ctx.log,
      });
    } catch (err) {
      if (err instanceof WaitTimeoutError) {
        throw new PendingError(`volume ${name} (${volumeId}) is still being created by EC2; Create again to check`, { volumeId, zone: this.zone });
      }
      throw err;
    }
    if (volume === undefined || volume.State === 'deleting' || volume.State === 'deleted') return false;
    if (volume.State === 'error') {
      await this.aws('DeleteVolume', ctx, { volumeId }, () => this.deps.ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId })));
      throw new CloudError(`EC2 failed to create volume ${name} (${volumeId} ended in state error; deleted it)`, 'VolumeCreationFailed', { volumeId, zone: this.zone });
    }
    return true;
  }

  // ---- Get / List ---------------------------------------------------------------------------

  async get(name: string, ctx: OperationContext): Promise<VolumeInfo | undefined> {
    // A miss in the cache is checked with EC2: another node may have created the volume since, and
    // a wrong "no such volume" makes dockerd create a duplicate or fail a Mount.
    const volume = (await this.catalog.all(ctx.deadline, ctx.log)).get(name) ?? (await this.catalog.lookup(name, ctx.deadline, ctx.log));
    if (!volume) return undefined;
    const mounted = await this.deps.host.mountAt(this.mountpointOf(name));
    return this.info(volume, mounted !== undefined);
  }

  async list(ctx: OperationContext): Promise<VolumeInfo[]> {
    const [volumes, mounts] = await Promise.all([this.catalog.all(ctx.deadline, ctx.log), this.deps.host.mounts()]);
    const targets = new Set(mounts.map((m) => m.target));
    return [...volumes.values()].map((v) => this.info(v, targets.has(this.mountpointOf(v.name))));
  }

  /**
   * The same VolumeInfo for as long as its catalog record and mount state last, so List's reply is
   * serialized once per change, not per request. A volume this node is moving shows live progress
   * and is never cached.
   */
  private info(volume: EbsVolume, mountedHere: boolean): VolumeInfo {
    if (this.inflight.get(volume.name)?.progress.move) return this.describeVolume(volume, mountedHere);
    const cached = this.infos.get(volume);
    if (cached && (cached.mountpoint !== undefined) === mountedHere) return cached;
    const info = this.describeVolume(volume, mountedHere);
    this.infos.set(volume, info);
    return info;
  }

  private describeVolume(volume: EbsVolume, mountedHere: boolean): VolumeInfo {
    const status: VolumeInfo['status'] = {
      backing: 'relocatable',
      volumeId: volume.id,
      zone: volume.zone,
      size: volume.size,
      type: volume.type,
      state: volume.state,
      generation: volume.generation,
      fs: volume.fs,
      encrypted: volume.encrypted,
    };
    if (volume.iops !== undefined) status.iops = volume.iops;
    if (volume.throughput !== undefined) status.throughput = volume.throughput;
    if (volume.attachment) {
      status.attachedTo = volume.attachment.instanceId;
      status.attachment = volume.attachment.state;
    }
    // This node's own move knows its stage and progress; another node's shows as its unfinished copy.
    const move = this.inflight.get(volume.name)?.progress.move;
    if (move) {
      status.moving = `${move.from} → ${move.to}`;
      status.moveStage = `${move.stage}${move.percent !== undefined ? ` ${move.percent}%` : ''}`;
    } else if (volume.movingTo) {
      status.moving = `${volume.zone} → ${volume.movingTo.zone}`;
      status.moveStage = volume.movingTo.state === 'creating' ? 'creating' : 'retiring';
    }
    if (volume.movingTo) status.moveCopy = volume.movingTo.id;
    return {
      name: volume.name,
      backing: 'relocatable',
      ...(mountedHere && { mountpoint: this.mountpointOf(volume.name) }),
      ...(volume.createdAt && { createdAt: volume.createdAt.toISOString() }),
      status,
      options: optionsOf(volume),
    };
  }

  // ---- Mount --------------------------------------------------------------------------------

  async mount(name: string, ctx: OperationContext): Promise<string> {
    let work = this.inflight.get(name);
    if (work) {
      ctx.log.info({ doing: work.progress.doing }, 'joining the mount already in progress');
    } else {
      work = this.startMount(name, ctx);
    }
    return this.answerBy(work, ctx.deadline);
  }

  private startMount(name: string, ctx: OperationContext): MountWork {
    const progress: MountProgress = { doing: `looking up volume ${name}`, context: {} };
    const work: MountWork = { progress, promise: this.mountWork(name, ctx, progress) };
    this.inflight.set(name, work);
    work.promise.then(
      () => this.inflight.delete(name),
      (err: unknown) => {
        this.inflight.delete(name);
        ctx.log.warn({ err, doing: progress.doing }, 'mount failed');
      },
    );
    return work;
  }

  /** The work's result if it comes by the deadline; else a retryable error saying what is pending. */
  private async answerBy(work: MountWork, deadline: number): Promise<string> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const { doing, context, holder, move } = work.progress;
        reject(
          holder
            ? this.heldElsewhere(context, holder)
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

  private heldElsewhere(context: ErrorContext, holder: NonNullable<MountProgress['holder']>): StowageError {
    return new VolumeBusyError(
      `volume is attached to instance ${holder.instance} in ${holder.zone}, which still holds it (${holder.reason}); ` +
        'it must be unmounted there first',
      { ...context, instance: holder.instance, zone: holder.zone },
    );
  }

  private async mountWork(name: string, ctx: OperationContext, progress: MountProgress): Promise<string> {
    const log = ctx.log;
    const deadline = Math.max(ctx.deadline, Date.now() + BACKGROUND_LIMIT_MS);
    try {
      let volume = await this.catalog.lookup(name, deadline, log);
      if (!volume) throw new VolumeNotFoundError(name);
      progress.context = { volumeId: volume.id, zone: volume.zone };
      if (volume.state === 'creating') volume = await this.waitUntil(volume, (v) => v?.State !== 'creating', 'to become available', deadline, log, progress);
      if (volume.attachment && volume.attachment.instanceId !== this.me) {
        volume = await this.takeOver(volume, ctx.deadline, deadline, log, progress);
      }
      // A copy another node is making elsewhere does not stop us: attaching here makes its move give up.
      if (volume.zone !== this.zone) volume = await this.moveAcrossZones(volume, deadline, log, progress);
      let device: string;
      const mine = volume.attachment;
      if (mine && mine.state !== 'detaching') {
        // Attached here already (a restart, or a Mount that answered Pending): reuse the attachment.
        if (mine.state !== 'attached') await this.waitUntil(volume, (v) => attachmentOn(v, this.me)?.State === 'attached', `attached to ${this.me}`, deadline, log, progress);
        device = mine.device ?? '';
        // A Mount that failed after attaching may have left the record of a snapshot that no longer holds the data.
        if (volume.snapshotCurrent || volume.blank) await this.snapshots.forget(volume.id, { deadline, log });
        log.info({ volumeId: volume.id, device }, 'volume already attached to this instance');
      } else {
        if (mine) await this.waitUntil(volume, (v) => !attachmentOn(v, this.me), `detached from ${this.me}`, deadline, log, progress);
        // Its data is about to change: no snapshot holds it any more, and it is no longer blank. That
        // must be on record before the first write, not before the attach: both go out together.
        const forgotten = volume.snapshotCurrent || volume.blank ? this.snapshots.forget(volume.id, { deadline, log }) : Promise.resolve();
        const [attached] = await Promise.allSettled([this.attach(volume, deadline, log, progress), forgotten]);
        await forgotten;
        if (attached.status === 'rejected') throw attached.reason;
        device = attached.value;
      }
      progress.doing = `preparing the device of ${volume.id} (${device})`;
      const mountpoint = this.mountpointOf(name);
      const found = await waitForDevice(this.deps.host, volume, device, Math.min(deadline, Date.now() + DEVICE_APPEAR_MS), this.pollInitialMs);
      await prepareAndMount(this.deps.host, volume, found, mountpoint, log);
      log.info({ volumeId: volume.id, device, mountpoint }, 'volume mounted');
      return mountpoint;
    } finally {
      this.catalog.invalidate();
    }
  }

  /** Invariant 5: snapshot → copy in this zone → retire the old volume (snapshot/zone-move.ts). */
  private async moveAcrossZones(volume: EbsVolume, deadline: number, log: Logger, progress: MountProgress): Promise<EbsVolume> {
    const started = Date.now();
    log.info({ volumeId: volume.id, from: volume.zone, to: this.zone }, 'volume is in another zone: moving it here');
    const moved = await this.mover.move(volume.name, this.zone, { deadline, log }, (move) => {
      progress.move = move;
      progress.doing = describeMove(move);
    });
    progress.move = undefined;
    progress.context = { volumeId: moved.id, zone: moved.zone };
    log.info({ volumeId: moved.id, from: volume.zone, to: this.zone, ms: Date.now() - started }, 'volume moved across zones');
    return moved;
  }

  /**
   * Another instance holds the volume: wait, until the Mount's deadline, for it to let go; break its
   * hold only when fencing allows (invariant 7), loudly. Otherwise the Mount is refused, naming it.
   */
  private async takeOver(volume: EbsVolume, answerDeadline: number, deadline: number, log: Logger, progress: MountProgress): Promise<EbsVolume> {
    const holder = volume.attachment!.instanceId;
    progress.doing = `waiting for instance ${holder} in ${volume.zone} to detach ${volume.id}`;
    for (;;) {
      const verdict = await this.fencing.judge(holder, answerDeadline, log);
      if (verdict.fenceable) {
        progress.holder = undefined;
        return this.forceDetach(volume, holder, verdict.reason, deadline, log, progress);
      }
      const holding = { instance: holder, zone: volume.zone, reason: verdict.reason };
      progress.holder = holding;
      const recheckAt = Math.min(answerDeadline, verdict.staleAt ?? Infinity, Date.now() + HOLDER_RECHECK_MS);
      try {
        const released = await this.waiter.waitFor(volume.id, (v) => !attachmentOn(v, holder), {
          deadline: recheckAt,
          what: `${volume.id} detached from ${holder}`,
          log,
        });
        progress.holder = undefined;
        log.info({ volumeId: volume.id, holder }, 'previous holder detached the volume');
        return this.record(released, volume);
      } catch (err) {
        if (!(err instanceof WaitTimeoutError)) throw err;
        if (Date.now() >= answerDeadline) throw this.heldElsewhere(progress.context, holding);
      }
    }
  }

  private async forceDetach(volume: EbsVolume, holder: string, reason: string, deadline: number, log: Logger, progress: MountProgress): Promise<EbsVolume> {
    log.warn({ volumeId: volume.id, holder, zone: volume.zone, reason }, `FORCE-DETACHING volume ${volume.name} (${volume.id}) from instance ${holder}: ${reason}`);
    this.deps.metrics?.fenced();
    progress.doing = `force-detaching ${volume.id} from ${holder}`;
    await this.aws('DetachVolume', { deadline, log }, { volumeId: volume.id, instance: holder }, () =>
      this.deps.ec2.send(new DetachVolumeCommand({ VolumeId: volume.id, InstanceId: holder, Force: true })),
    ).catch((err: unknown) => {
      // Detached by itself meanwhile: what we wanted.
      if (!hasCode(err, Ec2Code.IncorrectState) && !isNotFound(err)) throw err;
    });
    return this.waitUntil(volume, (v) => !attachmentOn(v, holder), `detached from ${holder}`, deadline, log, progress);
  }

  /**
   * AttachVolume on a fresh device name; an attach stuck in `attaching` is undone and retried on
   * another name, and a name EC2 refuses is not used again for a while (invariant 3).
   */
  private async attach(volume: EbsVolume, deadline: number, log: Logger, progress: MountProgress): Promise<string> {
    const ended = this.deps.metrics?.attachStarted();
    try {
      return await this.attachOnFreeName(volume, deadline, log, progress);
    } finally {
      ended?.();
    }
  }

  private async attachOnFreeName(volume: EbsVolume, deadline: number, log: Logger, progress: MountProgress): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      const device = this.names.allocate(await this.blockDeviceNames(deadline, log));
      const context = { volumeId: volume.id, instance: this.me, device };
      progress.doing = `attaching ${volume.id} to ${this.me} as ${device}`;
      progress.context = { ...progress.context, ...context };
      try {
        await this.aws('AttachVolume', { deadline, log }, context, () =>
          this.deps.ec2.send(new AttachVolumeCommand({ VolumeId: volume.id, InstanceId: this.me, Device: device })),
        );
      } catch (err) {
        if (hasCode(err, Ec2Code.InvalidParameterValue) && attempt < MAX_ATTACH_ATTEMPTS) {
          log.warn({ ...context, err: err.message }, 'EC2 refused the device name; trying another');
          this.names.refused(device);
          continue;
        }
        if (!hasCode(err, Ec2Code.VolumeInUse) || !(await this.attachedAs(volume, device, deadline, log))) {
          this.names.settle(device);
          if (hasCode(err, Ec2Code.VolumeInUse)) throw new VolumeBusyError(`volume ${volume.name} was attached to another instance meanwhile`, context);
          throw err;
        }
      }
      const stuckAt = Date.now() + this.stuckAttachMs;
      try {
        await this.attached(volume, device, Math.min(deadline, stuckAt), log);
        this.names.settle(device);
        return device;
      } catch (err) {
        if (!(err instanceof WaitTimeoutError) || Date.now() < stuckAt || attempt >= MAX_ATTACH_ATTEMPTS) {
          this.names.settle(device);
          throw err;
        }
        log.warn({ ...context, waitedMs: this.stuckAttachMs, state: attachmentOn(err.last, this.me)?.State }, 'attachment stuck; force-detaching it and retrying on another device name');
        this.names.refused(device);
        progress.doing = `undoing the stuck attachment of ${volume.id} as ${device}`;
        await this.aws('DetachVolume', { deadline, log }, context, () =>
          this.deps.ec2.send(new DetachVolumeCommand({ VolumeId: volume.id, InstanceId: this.me, Device: device, Force: true })),
        );
        await this.waitUntil(volume, (v) => !attachmentOn(v, this.me), `detached from ${this.me}`, deadline, log, progress);
      }
    }
  }

  /** A retried AttachVolume whose first try went through (a 5xx after the fact) finds the volume ours already. */
  /**
   * Until the attachment is done. The kernel shows the volume's device (by volume id) the moment
   * EC2 finishes, seconds before a backed-off DescribeVolumes would say so: whichever sees it first
   * ends the wait, and the device check costs no AWS call.
   */
  private async attached(volume: EbsVolume, device: string, giveUpAt: number, log: Logger): Promise<void> {
    const done = new AbortController();
    const described = this.waiter.waitFor(volume.id, (v) => attachmentOn(v, this.me)?.State === 'attached', {
      deadline: giveUpAt,
      what: `${volume.id} attached to ${this.me} as ${device}`,
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

  private async attachedAs(volume: EbsVolume, device: string, deadline: number, log: Logger): Promise<boolean> {
    const now = await this.catalog.lookup(volume.name, deadline, log);
    return now?.id === volume.id && now.attachment?.instanceId === this.me && now.attachment.device === device;
  }

  /**
   * This instance's block-device mappings: the names a new attachment must not take. Attaches that
   * start together share one DescribeInstances; the allocator keeps each one's pick from the others.
   */
  private blockDeviceNames(deadline: number, log: Logger): Promise<string[]> {
    return this.mappings.run(() => this.describeBlockDeviceNames(deadline, log));
  }

  private async describeBlockDeviceNames(deadline: number, log: Logger): Promise<string[]> {
    const out = await this.aws('DescribeInstances', { deadline, log }, { instance: this.me }, () =>
      this.deps.ec2.send(new DescribeInstancesCommand({ InstanceIds: [this.me] })),
    );
    return (out.Reservations ?? [])
      .flatMap((r) => r.Instances ?? [])
      .flatMap((i) => i.BlockDeviceMappings ?? [])
      .map((m) => m.DeviceName)
      .filter((n): n is string => n !== undefined);
  }

  // ---- Unmount ------------------------------------------------------------------------------

  async unmount(name: string, ctx: OperationContext): Promise<void> {
    const log = ctx.log;
    const host = this.deps.host.withLog(log);
    // A Mount that answered "pending" may still be attaching: let it finish, then undo all of it.
    const mounting = this.inflight.get(name);
    if (mounting) {
      log.info({ doing: mounting.progress.doing }, 'waiting for the mount in progress before unmounting');
      await mounting.promise.catch(() => undefined);
    }
    const mountpoint = this.mountpointOf(name);
    // A busy umount throws (naming what holds it) before anything is detached.
    if (await host.mountAt(mountpoint)) await host.unmount(mountpoint);
    try {
      const volume = await this.catalog.lookup(name, ctx.deadline, log);
      const mine = volume?.attachment?.instanceId === this.me ? volume.attachment : undefined;
      if (!volume || !mine) {
        log.info({ volumeId: volume?.id }, 'unmounted; volume not attached here, nothing to detach');
        return;
      }
      const context = { volumeId: volume.id, instance: this.me, device: mine.device };
      if (mine.state !== 'detaching') {
        await this.refuseIfMounted(volume, mine.device);
        await this.aws('DetachVolume', ctx, context, () => this.deps.ec2.send(new DetachVolumeCommand({ VolumeId: volume.id, InstanceId: this.me }))).catch(
          (err: unknown) => {
            // A retry of a DetachVolume that went through finds it detaching or detached.
            if (!hasCode(err, Ec2Code.IncorrectState, Ec2Code.AttachmentNotFound)) throw err;
          },
        );
        if (mine.device) this.names.freed(mine.device);
      }
      try {
        await this.waiter.waitFor(volume.id, (v) => !attachmentOn(v, this.me), { deadline: ctx.deadline, what: `${volume.id} detached from ${this.me}`, log });
      } catch (err) {
        if (!(err instanceof WaitTimeoutError)) throw err;
        throw new PendingError(`unmounted, but EC2 is still detaching ${volume.id} from ${this.me}; it goes on`, context);
      }
      log.info(context, 'volume unmounted and detached');
      if (this.deps.snapshotOnUnmount) void this.snapshotAfterUnmount(volume, log);
    } finally {
      this.catalog.invalidate();
    }
  }

  /**
   * Invariant 6: a clean unmount and detach leave the volume's data still, so an incremental snapshot
   * taken now holds it; a later cross-zone Mount restores from it without waiting for a snapshot. In
   * the background: the Unmount has answered. A failure costs only that head start.
   */
  private async snapshotAfterUnmount(volume: EbsVolume, log: Logger): Promise<void> {
    const step = { deadline: Date.now() + BACKGROUND_LIMIT_MS, log };
    const started = Date.now();
    try {
      const taken = await this.snapshots.create(volume, 'unmount', step);
      const current = await this.snapshots.markCurrent(volume, taken.id, step);
      if (current !== taken.id) {
        await this.snapshots.delete(taken.id, step);
        return;
      }
      await this.snapshots.prune(volume.name, this.deps.snapshotRetain ?? 1, new Set([taken.id]), step);
      log.info({ volumeId: volume.id, snapshotId: taken.id, generation: volume.generation, ms: Date.now() - started }, 'snapshot on unmount started and recorded');
    } catch (err) {
      log.warn({ volumeId: volume.id, err }, 'snapshot on unmount failed; a cross-zone move of this volume will take a snapshot itself');
    }
  }

  /** Invariant 4: never detach a device that is mounted anywhere on this node. */
  private async refuseIfMounted(volume: EbsVolume, requested: string | undefined): Promise<void> {
    const device = await this.deps.host.findDevice(volume.id, requested);
    if (!device) return;
    const still: MountEntry | undefined = (await this.deps.host.mounts()).find((m) => m.source === device);
    if (still) {
      throw new VolumeBusyError(`device ${device} of volume ${volume.name} is still mounted at ${still.target}; not detaching it`, { volumeId: volume.id, device });
    }
  }

  // ---- Remove -------------------------------------------------------------------------------

  async remove(name: string, ctx: OperationContext): Promise<void> {
    const mountpoint = this.mountpointOf(name);
    if (this.inflight.has(name)) throw new VolumeBusyError(`volume ${name} is being mounted on this node`, {});
    try {
      const volume = await this.catalog.lookup(name, ctx.deadline, ctx.log);
      if (!volume) throw new VolumeNotFoundError(name);
      const context = { volumeId: volume.id, zone: volume.zone };
      if (await this.deps.host.mountAt(mountpoint)) throw new VolumeBusyError(`volume ${name} is mounted at ${mountpoint} on this node`, context);
      if (volume.movingTo) {
        throw new VolumeBusyError(`volume ${name} is moving ${volume.zone} → ${volume.movingTo.zone}; remove it once the move is done (mount it there, or wait)`, context);
      }
      if (volume.attachment) {
        throw new VolumeBusyError(`volume ${name} is attached to instance ${volume.attachment.instanceId} (${volume.attachment.state}); unmount it there first`, {
          ...context,
          instance: volume.attachment.instanceId,
        });
      }
      try {
        await this.aws('DeleteVolume', ctx, context, () => this.deps.ec2.send(new DeleteVolumeCommand({ VolumeId: volume.id })));
      } catch (err) {
        if (hasCode(err, Ec2Code.VolumeInUse, Ec2Code.IncorrectState)) throw new VolumeBusyError(`volume ${name} is in use: ${err.message}`, { ...context, requestId: err.context.requestId });
        if (!isNotFound(err)) throw err;
      }
      ctx.log.info(context, 'volume deleted');
      // The snapshots it took to move were means, not backups: they go with it (operator backups stay).
      for (const snapshot of await this.snapshots.movingAids(name, ctx)) await this.snapshots.delete(snapshot.id, ctx);
    } finally {
      this.catalog.invalidate();
    }
    await rmdir(mountpoint).catch((err: NodeJS.ErrnoException) => {
      // Files in an unmounted mountpoint are not the volume's; leave them for a person to look at.
      if (err.code !== 'ENOENT') ctx.log.warn({ mountpoint, err: err.message }, 'mountpoint folder not removed');
    });
  }

  // ---- plumbing -----------------------------------------------------------------------------

  private aws<T>(operation: string, ctx: { deadline: number; log: Logger }, context: ErrorContext, send: () => Promise<T>): Promise<T> {
    return callAws(this.deps.counter, operation, send, {
      deadline: ctx.deadline,
      log: ctx.log,
      context,
      ...(this.deps.retry && { retry: this.deps.retry }),
    });
  }

  /** Waits for a state of `volume`; returns it as then seen. */
  private async waitUntil(
    volume: EbsVolume,
    done: (v: Volume | undefined) => boolean,
    what: string,
    deadline: number,
    log: Logger,
    progress: MountProgress,
  ): Promise<EbsVolume> {
    progress.doing = `waiting for ${volume.id} ${what}`;
    const seen = await this.waiter.waitFor(volume.id, done, { deadline, what: `${volume.id} ${what}`, log });
    return this.record(seen, volume);
  }

  private record(seen: Volume | undefined, before: EbsVolume): EbsVolume {
    const now = seen && toEbsVolume(seen, this.deps.cluster);
    if (!now) throw new VolumeNotFoundError(before.name, { volumeId: before.id });
    return now;
  }
}

export function createEbsDriver(deps: EbsDriverDeps): EbsDriver {
  return new EbsDriverImpl(deps);
}
