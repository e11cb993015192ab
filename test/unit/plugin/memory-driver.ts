import type { Driver, VolumeInfo } from '../../../drivers/driver.js';
import type { OperationContext } from '../../../core/context.js';
import type { Backing, VolumeOptions } from '../../../core/volume-options.js';

/** A driver that keeps volumes in memory and counts calls, for testing what sits above drivers. */
export class MemoryDriver implements Driver {
  readonly volumes = new Map<string, { options: VolumeOptions; createdAt: string }>();
  readonly calls: string[] = [];
  mountDelayMs = 0;
  failUnmount: Error | undefined;
  /** The next Mount fails with this (e.g. a PendingError while work goes on). */
  failMount: Error | undefined;
  /** Get and List fail with this while set: the backing's cloud does not answer (an EC2 brownout). */
  unreachable: Error | undefined;

  constructor(readonly backing: Backing = 'relocatable') {}

  async create(name: string, options: VolumeOptions): Promise<void> {
    this.calls.push(`create ${name}`);
    this.volumes.set(name, { options, createdAt: '2026-11-26T07:00:00.000Z' });
  }

  async remove(name: string): Promise<void> {
    this.calls.push(`remove ${name}`);
    this.volumes.delete(name);
  }

  async get(name: string): Promise<VolumeInfo | undefined> {
    if (this.unreachable) throw this.unreachable;
    const v = this.volumes.get(name);
    return v && { name, backing: this.backing, createdAt: v.createdAt, status: { size: v.options.size }, options: v.options };
  }

  async list(): Promise<VolumeInfo[]> {
    if (this.unreachable) throw this.unreachable;
    return Promise.all([...this.volumes.keys()].map(async (n) => (await this.get(n))!));
  }

  async mount(name: string, ctx: OperationContext): Promise<string> {
    this.calls.push(`mount ${name}`);
    const failure = this.failMount;
    this.failMount = undefined;
    if (failure) throw failure;
    if (this.mountDelayMs > 0) await new Promise((r) => setTimeout(r, this.mountDelayMs));
    ctx.log.debug('mounted');
    return this.mountpointOf(name);
  }

  /** Mounted from the first Mount on; a test takes the mount away to see it mounted again. */
  readonly unmountedUnder = new Set<string>();

  async isMounted(name: string): Promise<boolean> {
    return !this.unmountedUnder.has(name);
  }

  async unmount(name: string): Promise<void> {
    this.calls.push(`unmount ${name}`);
    if (this.failUnmount) throw this.failUnmount;
  }

  mountpointOf(name: string): string {
    return `/mnt/test/${name}`;
  }
}
