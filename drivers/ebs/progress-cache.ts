import type { OperationContext } from '../../core/context.js';
import type { EbsVolume } from '../../core/schema/ebs-volume.js';
import { readInitialization, readModification, type InitializationView, type ModificationView } from '../../aws/volume-progress.js';
import type { EbsCalls } from './ebs-calls.js';

/** dockerd asks Get often (before every Create, at every task start): EC2 is asked at most this often per volume. */
const FRESH_MS = 30_000;
/**
 * Only volumes modified by `stowage modify` (Tags.modifiedAt) or restored from a snapshot this long
 * ago are asked about: the cooldown, `optimizing` and an initialization at 100 MiB/s of a large
 * volume fit in it, and every other Get stays a read of the catalog's cache.
 */
const RECENT_MS = 48 * 3600_000;
/** A Get waits this long for the answer, at most; Status goes without it rather than make dockerd wait. */
const ANSWER_MS = 3000;

export interface VolumeProgress {
  modification: ModificationView | undefined;
  initialization: InitializationView | undefined;
}

/**
 * The modification and initialization a Get shows in Status, read per volume on Get only (List
 * stays one DescribeVolumes) and kept FRESH_MS. A read that fails shows nothing and is logged.
 */
export class ProgressCache {
  private readonly known = new Map<string, { at: number; progress: Promise<VolumeProgress> }>();

  constructor(private readonly calls: EbsCalls) {}

  async of(volume: EbsVolume, ctx: OperationContext): Promise<VolumeProgress> {
    // A new modification is a new key: what was completed of the last one says nothing of it.
    const key = `${volume.id} ${volume.modifiedAt?.toISOString() ?? ''}`;
    const cached = this.known.get(key);
    if (!cached || Date.now() - cached.at >= FRESH_MS) {
      const before = cached && (await cached.progress);
      for (const [id, entry] of this.known) if (Date.now() - entry.at > 10 * FRESH_MS) this.known.delete(id);
      this.known.set(key, { at: Date.now(), progress: this.read(volume, before, ctx) });
    }
    const none: VolumeProgress = { modification: undefined, initialization: undefined };
    const timer = new Promise<VolumeProgress>((resolve) => setTimeout(() => resolve(none), ANSWER_MS).unref());
    return Promise.race([this.known.get(key)!.progress, timer]);
  }

  private async read(volume: EbsVolume, before: VolumeProgress | undefined, ctx: OperationContext): Promise<VolumeProgress> {
    const send = <T>(operation: string, call: () => Promise<T>) =>
      this.calls.aws(operation, { ...ctx, deadline: Date.now() + ANSWER_MS * 10 }, { volumeId: volume.id }, call);
    const quietly = <T>(what: string, read: () => Promise<T | undefined>) =>
      read().catch((err: unknown) => {
        ctx.log.debug({ err, volumeId: volume.id }, `could not read the volume's ${what}`);
        return undefined;
      });
    const recent = (at: Date | undefined) => at !== undefined && Date.now() - at.getTime() < RECENT_MS;
    // What is completed stays so: asked no more.
    const ask = {
      modification: recent(volume.modifiedAt) && before?.modification?.state !== 'completed',
      initialization: volume.restoredFrom !== undefined && recent(volume.createdAt) && before?.initialization?.state !== 'completed',
    };
    const [modification, initialization] = await Promise.all([
      ask.modification ? quietly('modification', () => readModification(this.calls.ec2, volume.id, send)) : Promise.resolve(before?.modification),
      ask.initialization ? quietly('initialization', () => readInitialization(this.calls.ec2, volume.id, send)) : Promise.resolve(before?.initialization),
    ]);
    return { modification: recent(volume.modifiedAt) ? modification : undefined, initialization: recent(volume.createdAt) ? initialization : undefined };
  }
}
