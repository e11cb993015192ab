import { InvalidOptionError } from './errors.js';
import { oneOf, wholeNumber } from './option-rules.js';
import { EBS_LIMITS, EBS_TYPES, type EbsType } from './volume-options.js';

/** An EBS volume's size (GiB), type, IOPS and throughput (MiB/s): what CreateVolume and ModifyVolume set. */
export interface EbsConfig {
  size: number;
  ebstype: EbsType;
  iops?: number;
  throughput?: number;
}

/**
 * The operator's cost bounds (STOWAGE_MAX_SIZE_GIB, STOWAGE_MAX_IOPS), tighter than EBS's own: any
 * user of the docker socket can create volumes, and an io2 volume at EBS's maximum costs thousands a month.
 */
export interface CostLimits {
  maxSizeGiB: number;
  maxIops: number;
}

/** No bound beyond EBS's published limits. */
export const EBS_ONLY: CostLimits = { maxSizeGiB: Infinity, maxIops: Infinity };

/** How the caller names the four values in its errors (`--opt size`, or `stowage modify --size`). */
export interface EbsConfigNames {
  size: string;
  ebstype: string;
  iops: string;
  throughput: string;
  /** How to give a size, for a type whose minimum the default size misses. */
  giveSize: string;
}

export const OPTION_NAMES: EbsConfigNames = { size: 'size', ebstype: 'ebstype', iops: 'iops', throughput: 'throughput', giveSize: 'give --opt size' };

/** The values as given (strings, absent when not given). */
export type GivenConfig = Partial<Record<'size' | 'ebstype' | 'iops' | 'throughput', string>>;

/**
 * Size, type, IOPS and throughput within the type's published limits and the operator's. What is
 * not given comes from `current` when the volume exists (ModifyVolume keeps IOPS and throughput of
 * an unchanged type, and gives a new type its baseline, as EC2 does), else from a new volume's defaults.
 * A size below the current one is refused: EBS volumes only grow.
 */
export function checkEbsConfig(given: GivenConfig, cost: CostLimits = EBS_ONLY, current?: EbsConfig, names: EbsConfigNames = OPTION_NAMES): EbsConfig {
  const ebstype = given.ebstype !== undefined ? oneOf(names.ebstype, given.ebstype, EBS_TYPES) : (current?.ebstype ?? 'gp3');
  const sameType = current?.ebstype === ebstype;
  const limits = EBS_LIMITS[ebstype];
  const maxSize = Math.min(limits.maxSize, cost.maxSizeGiB);
  const sizeBound = maxSize < limits.maxSize ? ` (STOWAGE_MAX_SIZE_GIB=${cost.maxSizeGiB})` : '';
  const size = given.size !== undefined
    ? wholeNumber(names.size, given.size, limits.minSize, maxSize, `GiB for ${names.ebstype}=${ebstype}${sizeBound}`)
    : (current?.size ?? 10);
  if (current && size < current.size) {
    throw new InvalidOptionError(names.size, String(size), `smaller than the volume's ${current.size} GiB; EBS volumes never shrink (make a smaller volume and copy the data)`);
  }
  if (size < limits.minSize || size > maxSize) {
    throw new InvalidOptionError(names.size, String(size), `${names.ebstype}=${ebstype} needs a size from ${limits.minSize} to ${maxSize} GiB${sizeBound}; ${names.giveSize}`);
  }

  let iops: number | undefined;
  let throughput: number | undefined;
  if (limits.iops) {
    if (cost.maxIops < limits.iops.min) {
      throw new InvalidOptionError(names.ebstype, ebstype, `needs at least ${limits.iops.min} IOPS, more than STOWAGE_MAX_IOPS=${cost.maxIops} allows`);
    }
    // The per-GiB ratio bounds what lies above the type's minimum: gp3 has 3000 IOPS at any size.
    const ceiling = Math.max(limits.iops.min, Math.min(limits.iops.max, limits.iops.perGiB * size, cost.maxIops));
    const iopsBound = cost.maxIops < limits.iops.max ? `, STOWAGE_MAX_IOPS=${cost.maxIops}` : '';
    const kept = sameType ? current?.iops : undefined;
    const text = given.iops ?? (kept !== undefined ? String(kept) : undefined);
    iops = text !== undefined
      ? wholeNumber(names.iops, text, limits.iops.min, ceiling, `for ${names.ebstype}=${ebstype} at ${names.size}=${size} (at most ${limits.iops.perGiB} per GiB${iopsBound})`)
      : Math.max(limits.iops.min, Math.min(limits.iops.baseline, ceiling));
  } else if (given.iops !== undefined) {
    throw new InvalidOptionError(names.iops, given.iops, `${names.ebstype}=${ebstype} has no settable IOPS (settable for gp3, io1, io2)`);
  }
  if (limits.throughput) {
    const ceiling = Math.min(limits.throughput.max, Math.floor(limits.throughput.perIops * (iops ?? 0)));
    const kept = sameType ? current?.throughput : undefined;
    const text = given.throughput ?? (kept !== undefined ? String(kept) : undefined);
    throughput = text !== undefined
      ? wholeNumber(names.throughput, text, limits.throughput.min, ceiling, `MiB/s for ${names.ebstype}=${ebstype} at ${names.iops}=${iops} (at most ${limits.throughput.perIops} per IOPS)`)
      : limits.throughput.baseline;
  } else if (given.throughput !== undefined) {
    throw new InvalidOptionError(names.throughput, given.throughput, `${names.ebstype}=${ebstype} has no settable throughput (settable for gp3)`);
  }
  return { size, ebstype, ...(iops !== undefined && { iops }), ...(throughput !== undefined && { throughput }) };
}
