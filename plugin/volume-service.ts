import type { Driver, VolumeInfo } from '../drivers/driver.js';
import type { OperationContext } from '../core/context.js';
import { BackingUnavailableError, DataSafetyError, type ErrorContext, InvalidNameError, PendingError, InvalidRequestError, UnsupportedError, VolumeBusyError, VolumeConflictError, VolumeNotFoundError } from '../core/errors.js';
import { VOLUME_NAME } from '../core/option-rules.js';
import { KeyedLock } from './keyed-lock.js';
import type { Logger } from '../core/log.js';
import { conflictingKeys } from './options/conflict.js';
import { parseOptions } from './options/parse.js';
import type { CostLimits, LifecycleDefaults } from './options/relocatable.js';
import { type Backing } from '../core/volume-options.js';
import type { RefcountStore } from './refcounts.js';

/** dockerd sends 64 hex characters; anything that could reach a path or a log line unescaped is refused. */
const MOUNT_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,255}$/;

/** A backing whose Get or List failed: its cloud did not answer, or its driver did not start. */
interface Outage {
  backing: Backing;
  err: unknown;
}

function unavailable(what: string, failed: readonly Outage[], context: ErrorContext = {}): BackingUnavailableError {
  const why = failed.map(({ backing, err }) => `backing ${backing} did not answer (${err instanceof Error ? err.message : String(err)})`);
  return new BackingUnavailableError(`${what}: ${why.join('; ')}; retry`, { ...context, backing: failed.map((f) => f.backing).join(', ') }, { cause: failed[0]?.err });
}

/** The backing and the id that tells one volume from another there, for an operator to find it. */
function whereIs(info: VolumeInfo): string {
  const id = info.status.volumeId ?? info.status.accessPoint ?? info.status.share;
  return id === undefined ? info.backing : `${info.backing} (${String(id)})`;
}

export function checkName(name: unknown): string {
  if (typeof name !== 'string' || name === '') throw new InvalidRequestError('Name is missing or not a string');
  if (!VOLUME_NAME.test(name)) {
    throw new InvalidNameError(`invalid volume name ${JSON.stringify(name.slice(0, 140))}: use letters, digits, _ . - (at most 128, starting with a letter or digit)`);
  }
  return name;
}

export function checkMountId(id: unknown): string {
  if (typeof id !== 'string' || id === '') throw new InvalidRequestError('ID is missing or not a string');
  if (!MOUNT_ID.test(id)) throw new InvalidRequestError(`invalid mount ID ${JSON.stringify(id.slice(0, 80))}`);
  return id;
}

function hasBacking(rawOptions: unknown): boolean {
  return typeof rawOptions === 'object' && rawOptions !== null && 'backing' in rawOptions;
}

export interface VolumeServiceDeps {
  drivers: Driver[];
  refcounts: RefcountStore;
  log: Logger;
  defaultBacking: Backing;
  /** The operator's bounds on what a Create may cost (STOWAGE_MAX_SIZE_GIB, STOWAGE_MAX_IOPS); default: EBS's own limits. */
  cost?: CostLimits;
  /** Defaults and floors of the lifecycle options (STOWAGE_BACKUP_DEFAULT, STOWAGE_BACKUP_MIN_INTERVAL). */
  lifecycle?: LifecycleDefaults;
  /** How long a Mount or Create may take before it must answer (dockerd's limit, minus a margin). */
  mountTimeoutMs: number;
  /** The same for the other calls, which dockerd gives 1 minute. */
  requestTimeoutMs?: number;
  /**
   * A Mount that answered "pending" leaves its work running; if no Mount claims the result within
   * this time (Swarm placed the task elsewhere), the volume is let go so another node can have it.
   */
  unclaimedGraceMs?: number;
  /** Why a backing has no driver on this node, for the error a Create of it gets. */
  unavailableBackings?: Partial<Record<Backing, string>>;
}

/** A volume as the protocol shows it; read-only, and the same object while nothing about it changed. */
export interface VolumeView {
  name: string;
  mountpoint?: string;
  createdAt?: string;
  status: Record<string, string | number | boolean>;
}

/**
 * Between the protocol and the drivers: validates names and options, runs the operations on one
 * volume one at a time, counts mount references by ID, and dispatches to the driver of the
 * volume's backing.
 */
export class VolumeService {
  private readonly lock = new KeyedLock();
  private readonly drivers: Map<Backing, Driver>;
  private readonly requestTimeoutMs: number;
  private readonly unclaimed = new Map<string, NodeJS.Timeout>();
  /** By name, not a WeakMap on the VolumeInfo: see ListReply. */
  private views = new Map<string, { info: VolumeInfo; view: VolumeView }>();

  constructor(private readonly deps: VolumeServiceDeps) {
    this.drivers = new Map(deps.drivers.map((d) => [d.backing, d]));
    this.requestTimeoutMs = deps.requestTimeoutMs ?? 55_000;
  }

  async create(rawName: unknown, rawOptions: unknown): Promise<void> {
    const name = checkName(rawName);
    const log = this.deps.log.child({ volume: name, op: 'create' });
    const parsed = parseOptions(rawOptions, this.deps.defaultBacking, this.deps.cost, this.deps.lifecycle);
    const ctx = this.context(log, this.deps.mountTimeoutMs);
    await this.lock.run(name, async () => {
      const existing = await this.find(name, ctx);
      if (existing) {
        const differing = conflictingKeys(parsed, { ...existing.options, backing: existing.backing });
        if (differing.length > 0) {
          const detail = differing
            .map((key) => `${key}=${String(parsed.options[key])} (volume has ${String(key === 'backing' ? existing.backing : existing.options?.[key])})`)
            .join(', ');
          throw new VolumeConflictError(`volume ${name} already exists with other options: ${detail}`, { volume: name });
        }
        log.info({ backing: existing.backing }, 'volume exists with the same options; nothing to do');
        return;
      }
      const driver = this.driverFor(parsed.options.backing);
      await driver.create(name, parsed.options, ctx);
      log.info({ backing: parsed.options.backing }, 'volume created');
      if (!hasBacking(rawOptions)) {
        // Cloudstor's default, kept for compatibility, surprises whoever wanted a disk of their own.
        log.warn(
          { backing: parsed.options.backing },
          `volume ${name} was created without a backing option, so it is ${parsed.options.backing} (STOWAGE_DEFAULT_BACKING); for a disk that follows its task, create it with --opt backing=relocatable`,
        );
      }
    }, ctx.deadline);
  }

  async remove(rawName: unknown): Promise<void> {
    const name = checkName(rawName);
    const log = this.deps.log.child({ volume: name, op: 'remove' });
    const ctx = this.context(log, this.requestTimeoutMs);
    await this.lock.run(name, async () => {
      const held = this.deps.refcounts.count(name);
      if (held > 0) {
        throw new VolumeBusyError(`volume ${name} is mounted on this node by ${held} container(s); stop them first`, { volume: name }, false);
      }
      const existing = await this.find(name, ctx);
      if (!existing) throw new VolumeNotFoundError(name);
      await this.driverFor(existing.backing).remove(name, ctx);
      log.info({ backing: existing.backing }, 'volume removed');
    }, ctx.deadline);
  }

  async mount(rawName: unknown, rawId: unknown, signal?: AbortSignal): Promise<string> {
    const name = checkName(rawName);
    const id = checkMountId(rawId);
    const log = this.deps.log.child({ volume: name, op: 'mount', mountId: id });
    const ctx = this.context(log, this.deps.mountTimeoutMs, signal);
    return this.lock.run(name, async () => {
      const held = this.deps.refcounts.get(name);
      if (held && held.ids.length > 0) {
        // Invariant 8: a held reference is answered only with the volume mounted there; mounted
        // again when something took it away (an operator's umount, a lost attachment).
        const driver = this.driverFor(held.backing);
        if (!(await driver.isMounted(name, ctx))) {
          log.warn({ mountpoint: held.mountpoint }, 'held volume is not mounted any more; mounting it again');
          const mountpoint = await driver.mount(name, ctx);
          if (mountpoint !== held.mountpoint) {
            throw new DataSafetyError(`volume ${name} is held at ${held.mountpoint} but was mounted again at ${mountpoint}`, { volume: name });
          }
        }
        if (!signal?.aborted) await this.deps.refcounts.add(name, id, held.backing, held.mountpoint);
        log.info({ references: this.deps.refcounts.count(name) }, 'already mounted here; reference added');
        return held.mountpoint;
      }
      const existing = await this.find(name, ctx);
      if (!existing) throw new VolumeNotFoundError(name);
      const driver = this.driverFor(existing.backing);
      this.cancelRelease(name);
      let mountpoint: string;
      try {
        mountpoint = await driver.mount(name, ctx);
      } catch (err) {
        if (err instanceof PendingError) this.releaseIfUnclaimed(name, driver);
        throw err;
      }
      if (signal?.aborted) {
        // dockerd gave up on this Mount and will never Unmount its ID: keep nothing mounted for it.
        log.warn('client went away before the mount answered; undoing the mount');
        await driver.unmount(name, ctx);
        throw new InvalidRequestError('the client closed the connection before the mount finished', { volume: name });
      }
      await this.deps.refcounts.add(name, id, existing.backing, mountpoint);
      log.info({ mountpoint, backing: existing.backing }, 'first reference taken; volume mounted');
      return mountpoint;
    }, ctx.deadline, `volume ${name} is busy with another operation on this node; retry`);
  }

  async unmount(rawName: unknown, rawId: unknown): Promise<void> {
    const name = checkName(rawName);
    const id = checkMountId(rawId);
    const log = this.deps.log.child({ volume: name, op: 'unmount', mountId: id });
    const ctx = this.context(log, this.requestTimeoutMs);
    await this.lock.run(name, async () => {
      const held = this.deps.refcounts.get(name);
      if (!held || !held.ids.includes(id)) {
        log.info('no reference held by this ID; nothing to do');
        return;
      }
      if (held.ids.length > 1) {
        await this.deps.refcounts.remove(name, id);
        log.info({ references: held.ids.length - 1 }, 'reference released; volume stays mounted');
        return;
      }
      // The last reference goes only once the driver has let go, so a failed unmount can be retried.
      await this.driverFor(held.backing).unmount(name, ctx);
      await this.deps.refcounts.remove(name, id);
      log.info('last reference released; volume unmounted');
    }, ctx.deadline);
  }

  async path(rawName: unknown): Promise<string> {
    const name = checkName(rawName);
    const held = this.deps.refcounts.get(name);
    if (held) return held.mountpoint;
    const ctx = this.context(this.deps.log.child({ volume: name, op: 'path' }), this.requestTimeoutMs);
    if (!(await this.find(name, ctx))) throw new VolumeNotFoundError(name);
    return '';
  }

  async get(rawName: unknown): Promise<VolumeView> {
    const name = checkName(rawName);
    const ctx = this.context(this.deps.log.child({ volume: name, op: 'get' }), this.requestTimeoutMs);
    const info = await this.find(name, ctx);
    if (!info) throw new VolumeNotFoundError(name);
    return this.view(info);
  }

  async list(): Promise<VolumeView[]> {
    const ctx = this.context(this.deps.log.child({ op: 'list' }), this.requestTimeoutMs);
    const drivers = [...this.drivers.values()];
    const answers = await Promise.allSettled(drivers.map((d) => d.list(ctx)));
    const all: VolumeInfo[] = [];
    const failed: Outage[] = [];
    answers.forEach((answer, i) => {
      if (answer.status === 'fulfilled') all.push(...answer.value);
      else failed.push({ backing: drivers[i]!.backing, err: answer.reason });
    });
    // dockerd creates nothing from a List, so the reachable backings' volumes are worth showing;
    // an empty list when none answered would only look like data gone.
    if (failed.length > 0 && failed.length === drivers.length) throw unavailable('cannot list volumes', failed);
    for (const { backing, err } of failed) ctx.log.warn({ backing, err }, 'a backing did not answer; List shows the volumes of the others');
    // Removed volumes go once they are half of what is kept.
    if (this.views.size > 2 * all.length) {
      const listed = new Set(all.map((info) => info.name));
      this.views = new Map([...this.views].filter(([name]) => listed.has(name)));
    }
    return all.map((info) => this.view(info));
  }

  /** Stops the timers of pending Mounts (the plugin is shutting down). */
  close(): void {
    for (const timer of this.unclaimed.values()) clearTimeout(timer);
    this.unclaimed.clear();
  }

  private cancelRelease(name: string): void {
    clearTimeout(this.unclaimed.get(name));
    this.unclaimed.delete(name);
  }

  private releaseIfUnclaimed(name: string, driver: Driver): void {
    const graceMs = this.deps.unclaimedGraceMs ?? 60_000;
    const timer = setTimeout(() => {
      this.unclaimed.delete(name);
      const log = this.deps.log.child({ volume: name, op: 'release-unclaimed' });
      const ctx = this.context(log, this.requestTimeoutMs);
      this.lock
        .run(name, async () => {
          if (this.deps.refcounts.count(name) > 0) return;
          log.warn({ graceMs }, 'a Mount answered pending and no Mount claimed the volume since; letting it go');
          await driver.unmount(name, ctx);
        }, ctx.deadline)
        .catch((err: unknown) => log.error({ err }, 'could not let go of an unclaimed volume'));
    }, graceMs);
    timer.unref();
    this.unclaimed.set(name, timer);
  }

  /** The same view for as long as the driver's VolumeInfo and this node's references are unchanged (see VolumeInfo). */
  private view(info: VolumeInfo): VolumeView {
    const held = this.deps.refcounts.get(info.name);
    const known = this.views.get(info.name);
    const cached = known?.info === info ? known.view : undefined;
    if (cached && cached.mountpoint === held?.mountpoint && cached.status.references === held?.ids.length) return cached;
    const view: VolumeView = {
      name: info.name,
      mountpoint: held?.mountpoint,
      createdAt: info.createdAt,
      // Always named: a volume made without `backing` is shared, which its owner may not expect.
      status: { backing: info.backing, ...info.status, ...(held && { mountedHere: true, references: held.ids.length }) },
    };
    this.views.set(info.name, { info, view });
    return view;
  }

  /**
   * The volume under any backing. Invariant 10: "not found" only when every backing answered, for
   * dockerd creates a duplicate on a wrong one; a volume found where a backing answered goes on
   * without the others; one name in two backings is refused, for neither answer would be right.
   */
  private async find(name: string, ctx: OperationContext): Promise<VolumeInfo | undefined> {
    const drivers = [...this.drivers.values()];
    const answers = await Promise.allSettled(drivers.map((d) => d.get(name, ctx)));
    const found: VolumeInfo[] = [];
    const failed: Outage[] = [];
    answers.forEach((answer, i) => {
      if (answer.status === 'rejected') failed.push({ backing: drivers[i]!.backing, err: answer.reason });
      else if (answer.value) found.push(answer.value);
    });
    // A driver that refuses two volumes of one name within its backing has answered.
    const conflict = failed.find((f) => f.err instanceof VolumeConflictError);
    if (conflict) throw conflict.err;
    if (found.length > 1) {
      throw new VolumeConflictError(
        `volume ${name} exists twice: as ${found.map(whereIs).join(' and as ')}; refusing to pick one (remove the one that is not wanted with the AWS tools)`,
        { volume: name },
      );
    }
    if (found.length === 1) {
      for (const { backing, err } of failed) ctx.log.warn({ backing, err }, 'a backing did not answer; going on with the volume found in another, unchecked for a second one there');
      return found[0];
    }
    if (failed.length > 0) throw unavailable(`cannot tell whether volume ${name} exists`, failed, { volume: name });
    return undefined;
  }

  private driverFor(backing: Backing): Driver {
    const driver = this.drivers.get(backing);
    if (!driver) {
      const why = this.deps.unavailableBackings?.[backing] ?? 'this plugin was started without it';
      throw new UnsupportedError(`backing=${backing} is not available: ${why}`);
    }
    return driver;
  }

  private context(log: Logger, timeoutMs: number, signal?: AbortSignal): OperationContext {
    return { deadline: Date.now() + timeoutMs, log, ...(signal && { signal }) };
  }
}
