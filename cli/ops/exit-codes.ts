import { StowageError } from '../../core/errors.js';

/** What `stowage` operator commands exit with; scripts branch on these (docs/operations.md). */
export const ExitCode = {
  ok: 0,
  /** An AWS call or the command itself failed; nothing more was done. */
  failed: 1,
  /** Bad flags or arguments: nothing was sent to AWS. */
  usage: 2,
  /** The named volume exists in none of the regions asked. */
  notFound: 3,
  /** Refused to protect data or a running task (the volume is attached, the move is held elsewhere). */
  refused: 4,
  /** Some regions answered and some failed: the output covers the ones that answered. */
  partial: 5,
  /** Interrupted (Ctrl-C) or out of time with work still running; the same command resumes it. */
  interrupted: 130,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** A bad command line, told to the operator with the command's usage. */
export class UsageError extends Error {}

export function exitCodeOf(err: unknown): ExitCodeValue {
  if (err instanceof UsageError) return ExitCode.usage;
  if (!(err instanceof StowageError)) return ExitCode.failed;
  switch (err.kind) {
    case 'not-found':
      return ExitCode.notFound;
    case 'busy':
    case 'data-safety':
    case 'conflict':
      return ExitCode.refused;
    case 'pending':
      return ExitCode.interrupted;
    case 'invalid-name':
    case 'invalid-option':
    case 'config':
      return ExitCode.usage;
    default:
      return ExitCode.failed;
  }
}
