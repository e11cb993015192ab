/**
 * Device names for AttachVolume on this instance (DESIGN.md invariant 3). EC2 makes the client pick
 * the name, and reusing one too soon can leave an attachment stuck in `attaching`
 * (aws.amazon.com/premiumsupport/knowledge-center/ebs-stuck-attaching), so a name is never one of:
 * the instance's block-device mappings, a name handed out and not yet settled, a name freed
 * recently, or a name EC2 refused or got stuck on (both kept out for a while).
 */

import { CloudError } from '../../core/errors.js';

/** `/dev/xvdba` … `/dev/xvdcz`: clear of the root and instance-store names (`xvda`, `xvdb`…`xvdz`). */
export const DEVICE_NAMES: readonly string[] = ['b', 'c'].flatMap((first) =>
  [...'abcdefghijklmnopqrstuvwxyz'].map((second) => `/dev/xvd${first}${second}`),
);

/** `/dev/sdf`, `sdf`, `/dev/xvdf` all name the same slot: compare on what follows `sd`/`xvd`. */
export function deviceSlot(name: string): string {
  return name.replace(/^\/dev\//, '').replace(/^(xvd|sd)/, '');
}

export interface DeviceNameOptions {
  /** How long a detached name stays out of use. */
  freedQuarantineMs?: number;
  /** How long a name EC2 refused or got stuck on stays out of use. */
  refusedQuarantineMs?: number;
  now?: () => number;
}

export class DeviceNameAllocator {
  private readonly inFlight = new Set<string>();
  /** slot → epoch ms until which it stays out. */
  private readonly quarantine = new Map<string, number>();
  private readonly freedMs: number;
  private readonly refusedMs: number;
  private readonly now: () => number;

  constructor(options: DeviceNameOptions = {}) {
    this.freedMs = options.freedQuarantineMs ?? 5 * 60_000;
    this.refusedMs = options.refusedQuarantineMs ?? 60 * 60_000;
    this.now = options.now ?? Date.now;
  }

  /**
   * Reserves the first usable name; `inUse` are the instance's block-device mappings as EC2 reports
   * them. Call `settle` once the attach has succeeded or failed.
   */
  allocate(inUse: Iterable<string>): string {
    const now = this.now();
    const taken = new Set([...inUse].map(deviceSlot));
    for (const name of DEVICE_NAMES) {
      const slot = deviceSlot(name);
      if (taken.has(slot) || this.inFlight.has(slot) || (this.quarantine.get(slot) ?? 0) > now) continue;
      this.quarantine.delete(slot);
      this.inFlight.add(slot);
      return name;
    }
    throw new CloudError(
      `no free device name on this instance (${taken.size} in use, ${this.inFlight.size} being attached, the rest recently used)`,
      'AttachmentLimitExceeded',
      {},
      { retryable: true },
    );
  }

  /** The attach of `name` is over (attached: the mapping now holds it; failed: see refused). */
  settle(name: string): void {
    this.inFlight.delete(deviceSlot(name));
  }

  /** Detached from `name`: keep it out for a while. */
  freed(name: string): void {
    this.quarantine.set(deviceSlot(name), this.now() + this.freedMs);
  }

  /** EC2 refused `name` (InvalidParameterValue) or an attach on it got stuck. */
  refused(name: string): void {
    this.settle(name);
    this.quarantine.set(deviceSlot(name), this.now() + this.refusedMs);
  }
}
