import type { VolumeOptions, Backing } from '../core/volume-options.js';
import type { OperationContext } from '../core/context.js';

/** What Get and List report about one volume. */
/**
 * Read-only for its callers: a driver may hand out the same object for as long as the volume is
 * unchanged, which lets List reuse what it serialized before.
 */
export interface VolumeInfo {
  name: string;
  backing: Backing;
  /** Set only where the volume is mounted on this node. */
  mountpoint?: string;
  /** RFC 3339, or absent. */
  createdAt?: string;
  /** Free-form facts shown by `docker volume inspect`. */
  status: Record<string, string | number | boolean>;
  /** The options the volume was created with, to tell an idempotent Create from a conflicting one. */
  options?: Partial<VolumeOptions>;
}

/**
 * One backing (EBS, EFS, NFS). The VolumeService has validated names and options, holds the
 * per-volume lock and the mount reference counts; a driver only talks to its cloud and its host.
 */
export interface Driver {
  readonly backing: Backing;
  create(name: string, options: VolumeOptions, ctx: OperationContext): Promise<void>;
  remove(name: string, ctx: OperationContext): Promise<void>;
  /** undefined when this driver has no volume by that name. */
  get(name: string, ctx: OperationContext): Promise<VolumeInfo | undefined>;
  list(ctx: OperationContext): Promise<VolumeInfo[]>;
  /** Makes the volume available on this node; returns the mountpoint. */
  mount(name: string, ctx: OperationContext): Promise<string>;
  /**
   * Whether the kernel shows this volume mounted at its mountpoint on this node now (invariant 8):
   * a held reference is answered only then; otherwise the volume is mounted again.
   */
  isMounted(name: string, ctx: OperationContext): Promise<boolean>;
  /** Called when the last reference on this node is gone. */
  unmount(name: string, ctx: OperationContext): Promise<void>;
  /** Where the volume is (or would be) mounted on this node. */
  mountpointOf(name: string): string;
}
