import type { OptionKey, VolumeOptions } from '../../core/volume-options.js';
import type { ParsedOptions } from './parse.js';

/** The given keys on which a requested Create disagrees with an existing volume's options. */
export function conflictingKeys(requested: ParsedOptions, existing: Partial<VolumeOptions>): OptionKey[] {
  return requested.given.filter((key) => {
    const have = existing[key];
    if (have === undefined) return false;
    return JSON.stringify(have) !== JSON.stringify(requested.options[key]);
  });
}
