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
  /** Aborted when this work must stop now (a Mount takes over from a background detach): retries end at once. */
  cancel?: AbortSignal;
  log: Logger;
}
