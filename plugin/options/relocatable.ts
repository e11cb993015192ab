import { InvalidOptionError } from '../../core/errors.js';
import { bool, interval, kmsKeyId, mountOptions, oneOf, region, snapshotId, wholeNumber } from '../../core/option-rules.js';
import { DEFAULT_BACKUP_RETAIN, EBS_LIMITS, EBS_TYPES, FILESYSTEMS, INIT_RATE, type VolumeOptions } from '../../core/volume-options.js';
import { parseOwnership } from './ownership.js';
import type { GivenValues } from './given-values.js';

export type RelocatableOptions = Pick<
  VolumeOptions,
  'size' | 'ebstype' | 'iops' | 'throughput' | 'encrypted' | 'kmskeyid' | 'snapshot' | 'fs' | 'mountopts' | 'uid' | 'gid' | 'mode' | 'backup' | 'backupretain' | 'drregion' | 'initrate'
>;

/** The plugin's defaults and floors for the lifecycle options (STOWAGE_BACKUP_DEFAULT, STOWAGE_BACKUP_MIN_INTERVAL, STOWAGE_DR_REGION). */
export interface LifecycleDefaults {
  backup?: string;
  backupMinIntervalMs: number;
  drregion?: string;
}

const NO_LIFECYCLE_DEFAULTS: LifecycleDefaults = { backupMinIntervalMs: 60_000 };

/**
 * The operator's cost bounds (STOWAGE_MAX_SIZE_GIB, STOWAGE_MAX_IOPS), tighter than EBS's own: any
 * user of the docker socket can create volumes, and an io2 volume at EBS's maximum costs thousands a month.
 */
export interface CostLimits {
  maxSizeGiB: number;
  maxIops: number;
}

/** No bound beyond EBS's published limits. */
const EBS_ONLY: CostLimits = { maxSizeGiB: Infinity, maxIops: Infinity };

/** `backing=relocatable`: size, type, IOPS and throughput within the type's published limits and the operator's. */
export function parseRelocatable(values: GivenValues, cost: CostLimits = EBS_ONLY, lifecycle: LifecycleDefaults = NO_LIFECYCLE_DEFAULTS): RelocatableOptions {
  const ebstype = values.has('ebstype') ? oneOf('ebstype', values.get('ebstype')!, EBS_TYPES) : 'gp3';
  const limits = EBS_LIMITS[ebstype];
  const maxSize = Math.min(limits.maxSize, cost.maxSizeGiB);
  const sizeBound = maxSize < limits.maxSize ? ` (STOWAGE_MAX_SIZE_GIB=${cost.maxSizeGiB})` : '';
  const size = values.has('size')
    ? wholeNumber('size', values.get('size')!, limits.minSize, maxSize, `GiB for ebstype=${ebstype}${sizeBound}`)
    : 10;
  if (size < limits.minSize || size > maxSize) {
    throw new InvalidOptionError('size', String(size), `ebstype=${ebstype} needs a size from ${limits.minSize} to ${maxSize} GiB${sizeBound}; give --opt size`);
  }

  let iops: number | undefined;
  let throughput: number | undefined;
  if (limits.iops) {
    if (cost.maxIops < limits.iops.min) {
      throw new InvalidOptionError('ebstype', ebstype, `needs at least ${limits.iops.min} IOPS, more than STOWAGE_MAX_IOPS=${cost.maxIops} allows`);
    }
    const ceiling = Math.min(limits.iops.max, limits.iops.perGiB * size, cost.maxIops);
    const iopsBound = cost.maxIops < limits.iops.max ? `, STOWAGE_MAX_IOPS=${cost.maxIops}` : '';
    iops = values.has('iops')
      ? wholeNumber('iops', values.get('iops')!, limits.iops.min, ceiling, `for ebstype=${ebstype} at size=${size} (at most ${limits.iops.perGiB} per GiB${iopsBound})`)
      : Math.max(limits.iops.min, Math.min(limits.iops.baseline, ceiling));
  } else if (values.has('iops')) {
    throw new InvalidOptionError('iops', values.get('iops')!, `ebstype=${ebstype} has no settable IOPS (settable for gp3, io1, io2)`);
  }
  if (limits.throughput) {
    const ceiling = Math.min(limits.throughput.max, Math.floor(limits.throughput.perIops * (iops ?? 0)));
    throughput = values.has('throughput')
      ? wholeNumber('throughput', values.get('throughput')!, limits.throughput.min, ceiling, `MiB/s for ebstype=${ebstype} at iops=${iops} (at most ${limits.throughput.perIops} per IOPS)`)
      : limits.throughput.baseline;
  } else if (values.has('throughput')) {
    throw new InvalidOptionError('throughput', values.get('throughput')!, `ebstype=${ebstype} has no settable throughput (settable for gp3)`);
  }

  const encrypted = values.has('encrypted') ? bool('encrypted', values.get('encrypted')!) : true;
  let kmskeyid: string | undefined;
  if (values.has('kmskeyid')) {
    kmskeyid = kmsKeyId('kmskeyid', values.get('kmskeyid')!);
    if (!encrypted) throw new InvalidOptionError('kmskeyid', kmskeyid, 'needs encrypted=true');
  }
  const snapshot = values.has('snapshot') ? snapshotId('snapshot', values.get('snapshot')!) : undefined;
  const fs = values.has('fs') ? oneOf('fs', values.get('fs')!, FILESYSTEMS) : 'ext4';
  const mountopts = mountOptions('mountopts', values.get('mountopts') ?? '', fs);
  const backupText = values.get('backup') ?? lifecycle.backup;
  const backup = backupText === undefined || backupText === 'off' ? undefined : backupText;
  if (backup !== undefined) interval('backup', backup, lifecycle.backupMinIntervalMs);
  const backupretain = values.has('backupretain') ? wholeNumber('backupretain', values.get('backupretain')!, 1, 1000, 'backups kept') : DEFAULT_BACKUP_RETAIN;
  const drText = values.get('drregion') ?? lifecycle.drregion;
  const drregion = drText === undefined || drText === '' ? undefined : region('drregion', drText);
  const initrate = values.has('initrate') ? wholeNumber('initrate', values.get('initrate')!, INIT_RATE.min, INIT_RATE.max, 'MiB/s (EBS volume initialization rate)') : undefined;
  return {
    size, ebstype, encrypted, fs, mountopts, backupretain, ...parseOwnership(values),
    ...(backup !== undefined && { backup }),
    ...(drregion !== undefined && { drregion }),
    ...(initrate !== undefined && { initrate }),
    ...(iops !== undefined && { iops }),
    ...(throughput !== undefined && { throughput }),
    ...(kmskeyid !== undefined && { kmskeyid }),
    ...(snapshot !== undefined && { snapshot }),
  };
}
