import type { Driver, VolumeInfo } from '../drivers/driver.js';
import type { OperationContext } from '../core/context.js';
import type { Backing, VolumeOptions } from '../core/volume-options.js';

/**
 * A driver whose construction needs the cloud (node identity from IMDS, a first Describe). dockerd
 * gives a plugin ~12 s to open its socket, so the plugin listens at once and each request waits
 * here for the real driver; a failed start is reported on every request instead of killing the plugin.
 */
export class DeferredDriver implements Driver {
  private ready: Promise<Driver> | undefined;

  constructor(
    readonly backing: Backing,
    private readonly mountRoot: string,
    private readonly start: () => Promise<Driver>,
  ) {
    void this.driver().catch(() => undefined);
  }

  private driver(): Promise<Driver> {
    if (!this.ready) {
      const attempt = this.start();
      // A failed start (IMDS or AWS unreachable for a moment) is tried again by the next request.
      attempt.catch(() => {
        if (this.ready === attempt) this.ready = undefined;
      });
      this.ready = attempt;
    }
    return this.ready;
  }

  async create(name: string, options: VolumeOptions, ctx: OperationContext): Promise<void> {
    return (await this.driver()).create(name, options, ctx);
  }

  async remove(name: string, ctx: OperationContext): Promise<void> {
    return (await this.driver()).remove(name, ctx);
  }

  async get(name: string, ctx: OperationContext): Promise<VolumeInfo | undefined> {
    return (await this.driver()).get(name, ctx);
  }

  async list(ctx: OperationContext): Promise<VolumeInfo[]> {
    return (await this.driver()).list(ctx);
  }

  async mount(name: string, ctx: OperationContext): Promise<string> {
    return (await this.driver()).mount(name, ctx);
  }

  async isMounted(name: string, ctx: OperationContext): Promise<boolean> {
    return (await this.driver()).isMounted(name, ctx);
  }

  async unmount(name: string, ctx: OperationContext): Promise<void> {
    return (await this.driver()).unmount(name, ctx);
  }

  mountpointOf(name: string): string {
    return `${this.mountRoot}/${name}`;
  }
}
