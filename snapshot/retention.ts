import { MOVE_REASONS } from '../core/schema/tags.js';

/** What retention needs to know of a snapshot, whoever read it (the plugin's store, the CLI's inventory). */
export interface RetainedSnapshot {
  id: string;
  state: string;
  /** Why it was taken (Tags.snapshotReason). */
  reason: string | undefined;
}

/**
 * The one retention policy, used by the plugin after a move or a snapshot on unmount and by `stowage
 * gc`. Of one volume name's snapshots (newest first) it keeps the newest `keep` completed ones the
 * plugin took to move the volume, and names the older ones to delete. Never deleted: operator
 * snapshots and any other reason (scheduled backups have their own count, backupsToPrune), pending ones (a move may wait
 * on one), and `protect`ed ones (a volume names them current or was restored from them).
 */
export function snapshotsToPrune<T extends RetainedSnapshot>(newestFirst: readonly T[], keep: number, protect: ReadonlySet<string>): T[] {
  const movingAids = newestFirst.filter((s) => isMovingAid(s) && s.state === 'completed');
  return movingAids.slice(keep).filter((s) => !protect.has(s.id));
}

/**
 * Scheduled backups of one name (newest first): the newest `keep` completed ones stay (the volume's
 * `backupretain`); pending ones stay (a DR copy or a restore may wait on one), and so do `protect`ed
 * ones: those a volume's tags name (a move's current data, a restore's source) and the sources of
 * DR copies still pending. Operator snapshots and moving aids are never counted nor deleted here.
 */
export function backupsToPrune<T extends RetainedSnapshot>(newestFirst: readonly T[], keep: number, protect: ReadonlySet<string>): T[] {
  return newestFirst.filter((s) => s.reason === 'backup' && s.state === 'completed').slice(keep).filter((s) => !protect.has(s.id));
}

/** A snapshot the plugin took to move its volume (not a backup): Remove deletes these with the volume. */
export function isMovingAid(s: RetainedSnapshot): boolean {
  return (MOVE_REASONS as readonly string[]).includes(s.reason ?? '');
}

/**
 * DR copies of one name in the DR region (newest data first): the newest `keep` completed ones stay
 * (the volume's `backupretain`), and so do pending ones (the next restore may wait on one) and
 * `protect`ed ones (a volume there is being made from them).
 */
export function drCopiesToPrune<T extends RetainedSnapshot>(newestFirst: readonly T[], keep: number, protect: ReadonlySet<string>): T[] {
  return newestFirst.filter((s) => s.reason === 'dr-copy' && s.state === 'completed').slice(keep).filter((s) => !protect.has(s.id));
}
