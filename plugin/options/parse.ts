import { InvalidOptionError } from '../../core/errors.js';
import { oneOf } from '../../core/option-rules.js';
import { BACKINGS, KEYS_BY_BACKING, OPTION_KEYS, type Backing, type OptionKey, type VolumeOptions } from '../../core/volume-options.js';
import { parseNfs } from './nfs.js';
import { parseRelocatable, type CostLimits, type LifecycleDefaults } from './relocatable.js';
import { parseShared } from './shared.js';

export interface ParsedOptions {
  options: VolumeOptions;
  /** The keys the user gave; a Create of an existing volume is compared on these only. */
  given: OptionKey[];
}

/** What a volume of any backing records for the keys its backing does not take. */
const DEFAULTS: VolumeOptions = {
  backing: 'shared', size: 10, ebstype: 'gp3', encrypted: true, fs: 'ext4', mountopts: [],
  perfmode: 'generalpurpose', uid: 0, gid: 0, mode: '0755',
};

/**
 * Validates `--opt` values from a Create. Unknown keys, values outside the allowed set, and keys
 * that do not apply to the chosen backing are refused with a message naming key, value and what is
 * allowed. Nothing may be created before this returns. `cost` bounds relocatable volumes below EBS's
 * own limits (the plugin passes STOWAGE_MAX_SIZE_GIB and STOWAGE_MAX_IOPS).
 */
export function parseOptions(raw: unknown, defaultBacking: Backing, cost?: CostLimits, lifecycle?: LifecycleDefaults): ParsedOptions {
  if (raw === undefined || raw === null) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new InvalidOptionError('Opts', describeValue(raw), 'an object of string keys and string values');
  }
  const given: OptionKey[] = [];
  const values = new Map<OptionKey, string>();
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    if (!(OPTION_KEYS as readonly string[]).includes(key)) {
      throw new InvalidOptionError(key, describeValue(value), `unknown option; known options: ${OPTION_KEYS.join(', ')}`);
    }
    if (typeof value !== 'string') throw new InvalidOptionError(key, describeValue(value), 'a string value');
    given.push(key as OptionKey);
    values.set(key as OptionKey, value.trim());
  }

  const backing = values.has('backing') ? oneOf('backing', values.get('backing')!, BACKINGS) : defaultBacking;
  const allowedKeys = KEYS_BY_BACKING[backing];
  for (const key of given) {
    if (!allowedKeys.includes(key)) {
      throw new InvalidOptionError(key, values.get(key)!, `does not apply to backing=${backing} (its options: ${allowedKeys.join(', ')})`);
    }
  }
  const own = backing === 'relocatable' ? parseRelocatable(values, cost, lifecycle) : backing === 'shared' ? parseShared(values) : parseNfs(values);
  return { options: { ...DEFAULTS, ...own, backing }, given };
}

/** A non-string value named by its kind: serialising a deeply nested one could exhaust the stack. */
function describeValue(value: unknown): string {
  if (Array.isArray(value)) return '(an array)';
  if (value !== null && typeof value === 'object') return '(an object)';
  return String(value);
}
