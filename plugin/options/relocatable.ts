import { checkEbsConfig, EBS_ONLY, type CostLimits } from '../../core/ebs-config.js';
import { InvalidOptionError } from '../../core/errors.js';
import { bool, interval, kmsKeyId, mountOptions, oneOf, region, snapshotId, wholeNumber } from '../../core/option-rules.js';
import { DEFAULT_BACKUP_RETAIN, FILESYSTEMS, INIT_RATE, type VolumeOptions } from '../../core/volume-options.js';
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

export type { CostLimits } from '../../core/ebs-config.js';

/** `backing=relocatable`: size, type, IOPS and throughput within the type's published limits and the operator's. */
export function parseRelocatable(values: GivenValues, cost: CostLimits = EBS_ONLY, lifecycle: LifecycleDefaults = NO_LIFECYCLE_DEFAULTS): RelocatableOptions {
  const { size, ebstype, iops, throughput } = checkEbsConfig(
    { size: values.get('size'), ebstype: values.get('ebstype'), iops: values.get('iops'), throughput: values.get('throughput') },
    cost,
  );
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
