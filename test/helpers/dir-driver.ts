import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Driver, OperationContext, VolumeInfo } from '../../drivers/driver.js';
import { VolumeNotFoundError } from '../../plugin/errors.js';
import type { VolumeOptions } from '../../plugin/options.js';

/** What the driver was asked to do, in order; tests count these to check the plugin's refcounting. */
export interface DriverCall {
  op: 'create' | 'remove' | 'mount' | 'unmount';
  name: string;
}

interface Meta {
  options: VolumeOptions;
  createdAt: string;
}

/**
 * TEST ONLY. A relocatable "volume" is a plain folder under `root/data/`, its options and creation
 * time a JSON file under `root/meta/`: enough for dockerd to drive the whole protocol end to end
 * before the EBS driver exists. Mounting makes nothing new (the folder is the mountpoint); the
 * driver only remembers which volumes are mounted and logs every call.
 */
export class DirDriver implements Driver {
  readonly backing = 'relocatable' as const;
  readonly calls: DriverCall[] = [];
  private readonly mounted = new Set<string>();

  constructor(readonly root: string) {}

  /** How many times the plugin called `op` for this volume. */
  count(op: DriverCall['op'], name: string): number {
    return this.calls.filter((c) => c.op === op && c.name === name).length;
  }

  mountpointOf(name: string): string {
    return path.join(this.root, 'data', safe(name));
  }

  async create(name: string, options: VolumeOptions, _ctx: OperationContext): Promise<void> {
    this.calls.push({ op: 'create', name });
    await mkdir(path.join(this.root, 'meta'), { recursive: true });
    await mkdir(this.mountpointOf(name), { recursive: true });
    const meta: Meta = { options, createdAt: new Date().toISOString() };
    // 'wx': the VolumeService looks before it creates, so an existing file means a bug upstream.
    await writeFile(this.metaFile(name), JSON.stringify(meta), { flag: 'wx' });
  }

  async remove(name: string, _ctx: OperationContext): Promise<void> {
    this.calls.push({ op: 'remove', name });
    await this.readMeta(name);
    await rm(this.mountpointOf(name), { recursive: true, force: true });
    await rm(this.metaFile(name));
  }

  async get(name: string, _ctx: OperationContext): Promise<VolumeInfo | undefined> {
    const meta = await this.readMeta(name).catch((err: unknown) => {
      if (err instanceof VolumeNotFoundError) return undefined;
      throw err;
    });
    return meta && this.info(name, meta);
  }

  async list(_ctx: OperationContext): Promise<VolumeInfo[]> {
    const files = await readdir(path.join(this.root, 'meta')).catch(() => []);
    const names = files.filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -'.json'.length));
    return Promise.all(names.map(async (name) => this.info(name, await this.readMeta(name))));
  }

  async mount(name: string, _ctx: OperationContext): Promise<string> {
    this.calls.push({ op: 'mount', name });
    await this.readMeta(name);
    this.mounted.add(name);
    return this.mountpointOf(name);
  }

  async unmount(name: string, _ctx: OperationContext): Promise<void> {
    this.calls.push({ op: 'unmount', name });
    this.mounted.delete(name);
  }

  private info(name: string, meta: Meta): VolumeInfo {
    return {
      name,
      backing: this.backing,
      createdAt: meta.createdAt,
      status: { driver: 'dir', path: this.mountpointOf(name), size: meta.options.size },
      options: meta.options,
      ...(this.mounted.has(name) && { mountpoint: this.mountpointOf(name) }),
    };
  }

  private metaFile(name: string): string {
    return path.join(this.root, 'meta', `${safe(name)}.json`);
  }

  private async readMeta(name: string): Promise<Meta> {
    try {
      return JSON.parse(await readFile(this.metaFile(name), 'utf8')) as Meta;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new VolumeNotFoundError(name);
      throw err;
    }
  }
}

/** The VolumeService validates names; this keeps a bug there from reaching outside the root. */
function safe(name: string): string {
  if (name === '' || name === '.' || name === '..' || name.includes('/')) throw new Error(`dir-driver: unsafe name ${JSON.stringify(name)}`);
  return name;
}
