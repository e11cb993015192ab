import type { Logger } from './log.js';

/**
 * One operation's context, from a protocol request down to a snapshot step: the deadline its answer
 * is due by, and a logger bound to the volume.
 */
export interface OperationContext {
  /** Epoch ms by which the caller must have an answer. */
  deadline: number;
  /** Aborted when the client went away; long work may continue in the background but must not add references. */
  signal?: AbortSignal;
  log: Logger;
}
