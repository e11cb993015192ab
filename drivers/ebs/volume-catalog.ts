import { DescribeVolumesCommand, type EC2Client, type Filter } from '@aws-sdk/client-ec2';
import type { Logger } from '../../core/log.js';
import { callAws, type RetryPolicy } from '../../aws/call.js';
import { delay } from '../../core/delay.js';
import { SHARE_WINDOW_MS } from '../../aws/shared-call.js';
import type { CallCounter } from '../../aws/call-counter.js';
import { Tags } from '../../core/schema/tags.js';
import { currentOf, toEbsVolume, type EbsVolume } from '../../core/schema/ebs-volume.js';
import { allPages } from '../../aws/pages.js';

export interface VolumeCatalogOptions {
  ec2: EC2Client;
  counter: CallCounter;
  cluster: string;
  ttlMs: number;
  now: () => number;
  /** The driver's retry policy (tests use milliseconds); absent: the default. */
  retry?: RetryPolicy;
}

/**
 * The cluster's relocatable volumes in every zone. List and Get read a short-lived cache filled by
 * one tag-filtered, paginated DescribeVolumes (concurrent readers share the refill); anything that
 * decides (create, mount, remove) asks EC2 afresh for one name.
 */
/** How long a volume this node created is looked for by id when a Describe by name misses it. */
const MADE_MEMORY_MS = 60_000;
/** EC2 accepts up to 200 values per filter. */
const NAMES_PER_CALL = 150;

export class VolumeCatalog {
  private cache: { at: number; volumes: Map<string, EbsVolume> } | undefined;
  private refill: Promise<Map<string, EbsVolume>> | undefined;
  private batch: { names: Set<string>; volumes: Promise<EbsVolume[]> } | undefined;
  /** Volumes this node created lately, by name: a Describe may not show them yet. */
  private readonly made = new Map<string, { id: string; at: number }>();

  constructor(private readonly options: VolumeCatalogOptions) {}

  /** Every volume of the cluster by name, at most ttlMs old. */
  async all(deadline: number, log: Logger): Promise<Map<string, EbsVolume>> {
    if (this.cache && this.options.now() - this.cache.at < this.options.ttlMs) return this.cache.volumes;
    if (!this.refill) {
      const refill = this.describe([], deadline, log).then((found) => {
        const byName = new Map<string, EbsVolume[]>();
        for (const v of found) byName.set(v.name, [...(byName.get(v.name) ?? []), v]);
        const volumes = new Map([...byName].map(([name, vs]) => [name, currentOf(vs)!]));
        // Only keep what no invalidate() has overtaken meanwhile.
        if (this.refill === refill) this.cache = { at: this.options.now(), volumes };
        return volumes;
      });
      this.refill = refill;
      void refill.then(
        () => this.refill === refill && (this.refill = undefined),
        () => this.refill === refill && (this.refill = undefined),
      );
    }
    return this.refill;
  }

  /**
   * The volume carrying `name` now (with the copy a cross-zone move is making of it), from EC2 (not
   * the cache). A volume this node just created is waited for when a lagging Describe does not show
   * it yet, so a Mount right after Create never answers "no such volume" (EC2 is eventually consistent).
   */
  async lookup(name: string, deadline: number, log: Logger): Promise<EbsVolume | undefined> {
    const found = currentOf(await this.named(name, deadline, log));
    const made = this.made.get(name);
    if (found || !made) return found;
    // Another node may have removed ours and made the name again meanwhile: the name is read again
    // too, and ours is not waited for past the memory (a volume still unseen then is not coming).
    const until = Math.min(deadline, Date.now() + made.at + MADE_MEMORY_MS - this.options.now());
    for (let wait = 50; Date.now() < until; wait = Math.min(wait * 2, 1000)) {
      await delay(Math.min(wait, until - Date.now()));
      const seen = currentOf(await this.named(name, deadline, log)) ?? currentOf(await this.describe([{ Name: 'volume-id', Values: [made.id] }], deadline, log));
      if (seen) return seen;
    }
    return undefined;
  }

  /** A volume this node created, for lookups until Describe shows it; `undefined` forgets the name (Remove). */
  madeHere(name: string, volumeId: string | undefined): void {
    if (volumeId === undefined) this.made.delete(name);
    else this.made.set(name, { id: volumeId, at: this.options.now() });
  }

  /**
   * Every volume carrying `name` now (more than one while a cross-zone move runs), from EC2.
   * Look-ups within a few milliseconds of each other share one DescribeVolumes (as the EBS CSI
   * driver's batcher does), so twenty Mounts arriving together cost one call, not twenty.
   */
  named(name: string, deadline: number, log: Logger): Promise<EbsVolume[]> {
    if (!this.batch || this.batch.names.size >= NAMES_PER_CALL) {
      const names = new Set<string>();
      const volumes = delay(SHARE_WINDOW_MS).then(() => {
        if (this.batch?.names === names) this.batch = undefined;
        return this.describe([{ Name: `tag:${Tags.volume}`, Values: [...names] }], deadline, log);
      });
      this.batch = { names, volumes };
    }
    this.batch.names.add(name);
    return this.batch.volumes.then((found) => found.filter((v) => v.name === name));
  }

  /** After our own change: the next List/Get reads EC2. */
  invalidate(): void {
    this.cache = undefined;
    this.refill = undefined;
  }

  private async describe(extra: Filter[], deadline: number, log: Logger): Promise<EbsVolume[]> {
    const filters: Filter[] = [
      { Name: `tag:${Tags.cluster}`, Values: [this.options.cluster] },
      { Name: `tag:${Tags.backing}`, Values: ['relocatable'] },
      ...extra,
    ];
    const found = await allPages(
      (token) =>
        callAws(
          this.options.counter,
          'DescribeVolumes',
          () => this.options.ec2.send(new DescribeVolumesCommand({ Filters: filters, MaxResults: 500, NextToken: token })),
          { deadline, log, ...(this.options.retry && { retry: this.options.retry }) },
        ),
      (page) => page.Volumes,
    );
    // The filter already asked for our tags; checking again costs nothing and guards the invariant.
    return found.map((v) => toEbsVolume(v, this.options.cluster)).filter((v): v is EbsVolume => v !== undefined);
  }
}
