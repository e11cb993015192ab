import { octalMode, wholeNumber } from '../../core/option-rules.js';
import type { VolumeOptions } from '../../core/volume-options.js';
import type { GivenValues } from './given-values.js';

export type Ownership = Pick<VolumeOptions, 'uid' | 'gid' | 'mode'>;

/** Owner and mode of a volume's root directory. */
export function parseOwnership(values: GivenValues): Ownership {
  return {
    uid: values.has('uid') ? wholeNumber('uid', values.get('uid')!, 0, 4294967294, '(a numeric user id)') : 0,
    gid: values.has('gid') ? wholeNumber('gid', values.get('gid')!, 0, 4294967294, '(a numeric group id)') : 0,
    mode: values.has('mode') ? octalMode('mode', values.get('mode')!) : '0755',
  };
}
