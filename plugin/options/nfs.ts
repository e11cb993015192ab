import { InvalidOptionError } from '../../core/errors.js';
import { nfsShare } from '../../core/option-rules.js';
import { parseOwnership, type Ownership } from './ownership.js';
import type { GivenValues } from './given-values.js';

/** `backing=nfs`: the export (required), and the root directory's owner and mode. */
export function parseNfs(values: GivenValues): { share: string } & Ownership {
  const share = values.get('share');
  if (share === undefined) throw new InvalidOptionError('share', '', 'backing=nfs needs share=host:/export');
  return { share: nfsShare('share', share), ...parseOwnership(values) };
}
