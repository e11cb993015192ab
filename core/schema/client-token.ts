import { createHash } from 'node:crypto';

/**
 * Deterministic, so a retried or concurrent Create of one volume cannot make two (≤ 64 chars: hex
 * sha256). `reuse` > 0 after a previous volume of this name was deleted: EC2 would hand back the
 * deleted volume for the old token.
 */
export function clientToken(cluster: string, name: string, generation: number, reuse = 0): string {
  const parts = [cluster, name, String(generation), ...(reuse > 0 ? [String(reuse)] : [])];
  return createHash('sha256').update(parts.join('/')).digest('hex');
}
