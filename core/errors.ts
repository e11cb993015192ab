/**
 * One error type per failure kind. Each carries what an operator needs to act (volume, instance,
 * zone, AWS request id); only the protocol edge turns them into `{"Err": …}`.
 */
export interface ErrorContext {
  volume?: string;
  volumeId?: string;
  instance?: string;
  zone?: string;
  requestId?: string;
  [key: string]: unknown;
}

export abstract class StowageError extends Error {
  abstract readonly kind: string;
  /** True when the same request may succeed later without anyone changing anything. */
  readonly retryable: boolean = false;
  readonly context: ErrorContext;

  constructor(message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.context = context;
  }
}

/** A protocol request that is malformed: bad JSON, wrong field types, missing fields. */
export class InvalidRequestError extends StowageError {
  readonly kind = 'invalid-request';
}

/** A volume name that does not match the allowed pattern. */
export class InvalidNameError extends StowageError {
  readonly kind = 'invalid-name';
}

/** A volume option with an unknown key or a value outside what is allowed. */
export class InvalidOptionError extends StowageError {
  readonly kind = 'invalid-option';
  constructor(
    readonly key: string,
    readonly value: string,
    readonly allowed: string,
    context: ErrorContext = {},
  ) {
    super(`invalid option ${clip(key)}=${JSON.stringify(clip(value))}: ${allowed}`, context);
  }
}

/** What of a refused value an error repeats: enough to recognise it, never a megabyte of it. */
function clip(text: string, max = 100): string {
  return text.length > max ? `${text.slice(0, max)}…(${text.length} characters)` : text;
}

/** A setting of the plugin itself (environment) that is missing or malformed. */
export class ConfigError extends StowageError {
  readonly kind = 'config';
}

export class VolumeNotFoundError extends StowageError {
  readonly kind = 'not-found';
  constructor(volume: string, context: ErrorContext = {}) {
    super(`volume ${volume} does not exist`, { volume, ...context });
  }
}

/** A Create whose options disagree with the volume that already carries the name. */
export class VolumeConflictError extends StowageError {
  readonly kind = 'conflict';
}

/** The volume is held elsewhere (attached to another instance, mounted) and the request cannot proceed. */
export class VolumeBusyError extends StowageError {
  readonly kind = 'busy';
  override readonly retryable: boolean;
  constructor(message: string, context: ErrorContext = {}, retryable = true) {
    super(message, context);
    this.retryable = retryable;
  }
}

/** Work is still running in the background past the request's deadline; the next request joins it. */
export class PendingError extends StowageError {
  readonly kind = 'pending';
  override readonly retryable = true;
}

/**
 * A backing that cannot answer now (its cloud unreachable, its driver still starting): nothing can
 * be said about its volumes, least of all that one does not exist. The same request may work later.
 */
export class BackingUnavailableError extends StowageError {
  readonly kind = 'unavailable';
  override readonly retryable = true;
}

/** An AWS call that failed for good (after retries), with the request id AWS gave. */
export class CloudError extends StowageError {
  readonly kind = 'cloud';
  override readonly retryable: boolean;
  constructor(
    message: string,
    readonly code: string,
    context: ErrorContext = {},
    options?: { cause?: unknown; retryable?: boolean },
  ) {
    super(message, context, options);
    this.retryable = options?.retryable ?? false;
  }
}

/** A command on the node (mkfs, mount, umount, fsck, losetup…) that failed. */
export class HostError extends StowageError {
  readonly kind = 'host';
}

/** A request that this backing or this build does not support (yet). */
export class UnsupportedError extends StowageError {
  readonly kind = 'unsupported';
}

/** Refusing an operation that could destroy data (a foreign filesystem, a device that is not the volume). */
export class DataSafetyError extends StowageError {
  readonly kind = 'data-safety';
}

/** The text dockerd shows the user: the message, then what identifies the resources involved. */
export function describeError(err: unknown): string {
  if (err instanceof StowageError) {
    const { volume: _volume, ...rest } = err.context;
    const details = Object.entries(rest)
      .filter(([, v]) => v !== undefined && v !== '')
      .map(([k, v]) => `${k}=${String(v)}`);
    const suffix = details.length > 0 ? ` (${details.join(', ')})` : '';
    const retry = err.retryable ? ' [retryable]' : '';
    return `${err.message}${suffix}${retry}`;
  }
  if (err instanceof Error) return `internal error: ${err.message}`;
  return `internal error: ${String(err)}`;
}
