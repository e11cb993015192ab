import { createHash, randomUUID } from 'node:crypto';

/**
 * ClientTokens (docs.aws.amazon.com/ec2/latest/devguide/ec2-api-idempotency.html): a retry with
 * the same token and parameters completes no more than once; the same token with other parameters
 * is IdempotentParameterMismatch; and EC2 keeps answering a token after its volume is gone. So a
 * token derived from the name alone would break remove-then-create of that name (issue 15.7).
 */

/**
 * One Create's own token: every retry of that request reuses it, and no other Create has it. A
 * crash between CreateVolume and its answer is covered by the look-up by tag before creating.
 */
export function createToken(): string {
  return randomUUID();
}

/**
 * A move's copy: the same on every node moving the same source from the same snapshot, so two
 * movers make one copy; a later move has another source (or snapshot), hence another token. `salt`
 * is the copy a move gave up, whose token EC2 would answer with that deleted volume.
 * Hex sha256: 64 characters, EC2's limit.
 */
export function copyToken(cluster: string, name: string, generation: number, sourceId: string, snapshotId: string | undefined, salt?: string): string {
  const parts = [cluster, name, String(generation), sourceId, snapshotId ?? 'blank', ...(salt !== undefined ? [salt] : [])];
  return createHash('sha256').update(parts.join('/')).digest('hex');
}

/** Access points: EFS makes one per token; the name's folder holds the data, not the access point. */
export function accessPointToken(cluster: string, name: string): string {
  return createHash('sha256').update([cluster, name, '0'].join('/')).digest('hex');
}
