import { oneOf } from '../../core/option-rules.js';
import { PERF_MODES, type VolumeOptions } from '../../core/volume-options.js';
import { parseOwnership, type Ownership } from './ownership.js';
import type { GivenValues } from './given-values.js';

/** `backing=shared`: which EFS file system (perfmode), and the root directory's owner and mode. */
export function parseShared(values: GivenValues): Pick<VolumeOptions, 'perfmode'> & Ownership {
  return {
    perfmode: values.has('perfmode') ? oneOf('perfmode', values.get('perfmode')!, PERF_MODES) : 'generalpurpose',
    ...parseOwnership(values),
  };
}
