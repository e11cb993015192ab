import type { Driver, VolumeInfo } from '../drivers/driver.js';
import type { OperationContext } from '../core/context.js';
import { BackingUnavailableError } from '../core/errors.js';
import type { Backing, VolumeOptions } from '../core/volume-options.js';

export interface DeferredDriverOptions {
  /**
   * How long a Get or List waits for a start in progress. Every Get asks every backing, so this
   * is what a backing slow to start costs the others; a normal start (IMDS, one Describe) fits.
   */
  lookupWaitMs?: number;
}

/**
 * A driver whose construction needs the cloud (node identity from IMDS, a first Describe). dockerd
 * gives a plugin ~12 s to open its socket, so the plugin listens at once and each request waits
 * here for the real driver; a start that fails or is not done in time is a retryable error naming
 * the backing, never a plugin that dies or a volume that "does not exist".
 */
export class DeferredDriver implements Driver {
  private ready: Promise<Driver> | undefined;
  private lastFailure: unknown;
  private readonly lookupWaitMs: number;

  constructor(
    readonly backing: Backing,
    private readonly mountRoot: string,
    private readonly start: () => Promise<Driver>,
    options: DeferredDriverOptions = {},
  ) {
    this.lookupWaitMs = options.lookupWaitMs ?? 5000;
    void this.attempt().catch(() => undefined);
  }

  private attempt(): Promise<Driver> {
    if (!this.ready) {
      const attempt = this.start();
      // A failed start (IMDS or AWS unreachable for a moment) is tried again by the next request.
      attempt.catch((err: unknown) => {
        this.lastFailure = err;
        if (this.ready === attempt) this.ready = undefined;
      });
      this.ready = attempt;
    }
    return this.ready;
  }

  /** The started driver, waiting at most `waitMs` and never past the request's deadline. */
  private async driver(ctx: OperationContext, waitMs = Infinity): Promise<Driver> {
    const attempt = this.attempt();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), Math.max(0, Math.min(waitMs, ctx.deadline - Date.now())));
    });
    try {
      const driver = await Promise.race([attempt, late]);
      if (driver) return driver;
    } catch (err) {
      throw this.unavailable(err);
    } finally {
      clearTimeout(timer);
    }
    throw this.unavailable(this.lastFailure);
  }

  private unavailable(failure: unknown): BackingUnavailableError {
    const context = { backing: this.backing };
    if (failure === undefined) {
      return new BackingUnavailableError(`backing ${this.backing} is still starting (node identity, first AWS call); retry`, context);
    }
    const why = failure instanceof Error ? failure.message : String(failure);
    return new BackingUnavailableError(`backing ${this.backing} could not start (${why}); it is tried again, retry`, context, { cause: failure });
  }

  async create(name: string, options: VolumeOptions, ctx: OperationContext): Promise<void> {
    return (await this.driver(ctx)).create(name, options, ctx);
  }

  async remove(name: string, ctx: OperationContext): Promise<void> {
    return (await this.driver(ctx)).remove(name, ctx);
  }

  async get(name: string, ctx: OperationContext): Promise<VolumeInfo | undefined> {
    return (await this.driver(ctx, this.lookupWaitMs)).get(name, ctx);
  }

  async list(ctx: OperationContext): Promise<VolumeInfo[]> {
    return (await this.driver(ctx, this.lookupWaitMs)).list(ctx);
  }

  async mount(name: string, ctx: OperationContext): Promise<string> {
    return (await this.driver(ctx)).mount(name, ctx);
  }

  async isMounted(name: string, ctx: OperationContext): Promise<boolean> {
    return (await this.driver(ctx)).isMounted(name, ctx);
  }

  async unmount(name: string, ctx: OperationContext): Promise<void> {
    return (await this.driver(ctx)).unmount(name, ctx);
  }

  mountpointOf(name: string): string {
    return `${this.mountRoot}/${name}`;
  }
}
