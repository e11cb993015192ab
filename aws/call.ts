import pRetry, { AbortError } from 'p-retry';
import type { OperationContext } from '../core/context.js';
import type { ErrorContext } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { CallCounter } from './call-counter.js';
import { classifyFailure, errorCode, toCloudError } from './errors.js';

export interface RetryPolicy {
  /** First backoff; each next one grows by `factor`, randomized ×[1,2) so nodes do not retry in step. */
  minDelayMs: number;
  maxDelayMs: number;
  factor: number;
}

export const DEFAULT_RETRY: RetryPolicy = { minDelayMs: 200, maxDelayMs: 5000, factor: 2 };

export interface CallOptions {
  /** Epoch ms: no retry starts after it (the first attempt always goes out). */
  deadline: number;
  /** Identifies the resources in the CloudError an operator will read. */
  context?: ErrorContext;
  log: Logger;
  retry?: RetryPolicy;
  /** Ends the retries at once (the attempt in flight still completes). */
  cancel?: AbortSignal;
}

/**
 * The one way every AWS request is sent: counted per operation and outcome, retried with jittered
 * exponential backoff on throttling and 5xx until the caller's deadline, and failing as a
 * CloudError with the AWS code, request id and the resources involved. The SDK's own retries are
 * off (see clients.ts), so this is the only retry layer and it knows the deadline.
 */
export async function callAws<T>(
  counter: CallCounter,
  operation: string,
  send: () => Promise<T>,
  options: CallOptions,
): Promise<T> {
  const policy = options.retry ?? DEFAULT_RETRY;
  const context = options.context ?? {};
  try {
    return await pRetry(
      async (attempt) => {
        const sentAt = Date.now();
        try {
          const result = await send();
          counter.record(operation, 'ok', attempt);
          // The request id AWS support asks for, on every call that changed or read something.
          const requestId = (result as { $metadata?: { requestId?: string } } | undefined)?.$metadata?.requestId;
          options.log.debug({ operation, requestId, ms: Date.now() - sentAt, attempt, ...context }, 'AWS call');
          return result;
        } catch (err) {
          const kind = classifyFailure(err);
          counter.record(operation, kind === 'throttled' ? 'throttled' : 'error', attempt);
          if (kind === 'permanent') throw new AbortError(toCloudError(err, operation, context));
          throw err;
        }
      },
      {
        retries: Number.POSITIVE_INFINITY,
        minTimeout: policy.minDelayMs,
        maxTimeout: policy.maxDelayMs,
        factor: policy.factor,
        randomize: true,
        maxRetryTime: Math.max(0, options.deadline - Date.now()),
        ...(options.cancel && { signal: options.cancel }),
        onFailedAttempt: ({ error, attemptNumber }) => {
          options.log.debug({ operation, code: errorCode(error), attempt: attemptNumber, ...context }, 'AWS call failed, retrying');
        },
      },
    );
  } catch (err) {
    // Out of time on a retryable failure: the same request may well succeed later.
    throw toCloudError(err, operation, context, classifyFailure(err) !== 'permanent');
  }
}

/** callAws for one step of an operation: bounded by its deadline, logged to its log, ended by its cancel signal. */
export function callInStep<T>(counter: CallCounter, operation: string, step: OperationContext, context: ErrorContext, send: () => Promise<T>, retry?: RetryPolicy): Promise<T> {
  return callAws(counter, operation, send, { deadline: step.deadline, log: step.log, context, ...(step.cancel && { cancel: step.cancel }), ...(retry && { retry }) });
}
