import { CloudError, type ErrorContext } from '../core/errors.js';

/**
 * EC2 error codes the drivers branch on, named like the CSI driver's ErrNotFound/ErrAlreadyExists
 * so the branching reads as intent, not string matching.
 */
export const Ec2Code = {
  VolumeNotFound: 'InvalidVolume.NotFound',
  InstanceNotFound: 'InvalidInstanceID.NotFound',
  AttachmentNotFound: 'InvalidAttachment.NotFound',
  SnapshotNotFound: 'InvalidSnapshot.NotFound',
  IncorrectState: 'IncorrectState',
  VolumeInUse: 'VolumeInUse',
  ZoneMismatch: 'InvalidVolume.ZoneMismatch',
  /** On AttachVolume: the device name is taken on the instance. */
  InvalidParameterValue: 'InvalidParameterValue',
  /** A ClientToken reused with other parameters: the "already exists" of CreateVolume. */
  IdempotentParameterMismatch: 'IdempotentParameterMismatch',
  /** DescribeVolumesModifications of a volume that was never modified. */
  ModificationNotFound: 'InvalidVolumeModification.NotFound',
  /** ModifyVolume within the cooldown after the previous modification. */
  ModificationRateExceeded: 'VolumeModificationRateExceeded',
  /** ModifyVolume while the previous modification has not completed. */
  IncorrectModificationState: 'IncorrectModificationState',
} as const;

const THROTTLING_CODES = new Set([
  'RequestLimitExceeded', 'Throttling', 'ThrottlingException', 'TooManyRequestsException',
  'RequestThrottled', 'RequestThrottledException', 'SlowDown',
]);
const SERVER_CODES = new Set(['InternalError', 'InternalFailure', 'ServiceUnavailable', 'Unavailable']);
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'TimeoutError', 'RequestTimeout']);

/** What an operator should understand from each code; AWS's own message follows it. */
const EXPLANATIONS: Record<string, string> = {
  'InvalidVolume.NotFound': 'the EBS volume does not exist (deleted, or in another region or account)',
  'InvalidInstanceID.NotFound': 'the instance does not exist (terminated long ago, or in another region)',
  'InvalidAttachment.NotFound': 'the volume is not attached to that instance',
  'InvalidSnapshot.NotFound': 'the snapshot does not exist or is not shared with this account',
  IncorrectState: 'the volume is not in a state that allows this (still creating, attaching or detaching)',
  VolumeInUse: 'the volume is attached to an instance',
  'InvalidVolume.ZoneMismatch': 'the volume and the instance are in different availability zones',
  InvalidParameterValue: 'EC2 refused a parameter (for AttachVolume: the device name is already in use)',
  IdempotentParameterMismatch: 'an earlier request with the same client token asked for other parameters',
  UnauthorizedOperation: "the node's IAM role does not allow this call (is the volume tagged for this cluster?)",
  AuthFailure: 'AWS rejected the credentials',
  VolumeLimitExceeded: "the account's EBS volume or storage quota is reached",
  AttachmentLimitExceeded: 'the instance has no free volume attachment slot',
  InsufficientVolumeCapacity: 'EC2 has no capacity for this volume type in this zone right now',
  RequestLimitExceeded: 'EC2 kept throttling the calls until the deadline',
  InternalError: 'EC2 failed internally until the deadline',
};

/** The fields of an AWS SDK v3 service exception this module reads. */
interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number; requestId?: string };
}

function shape(err: unknown): SdkErrorShape {
  return typeof err === 'object' && err !== null ? (err as SdkErrorShape) : {};
}

/** The SDK wraps what fails below HTTP (a socket hang-up is a TimeoutError) in a plain Error. */
const SDK_WRAPPER = /^AWS SDK error wrapper for (\w+)/;

/** The AWS error code (the SDK puts it in `name`), or a network error code. */
export function errorCode(err: unknown): string {
  const e = shape(err);
  if (e.code && NETWORK_CODES.has(e.code)) return e.code;
  const wrapped = SDK_WRAPPER.exec(e.message ?? '')?.[1];
  if (wrapped && (e.name === undefined || e.name === 'Error')) return wrapped;
  return e.name ?? 'UnknownError';
}

export function requestIdOf(err: unknown): string | undefined {
  return shape(err).$metadata?.requestId;
}

export type FailureKind = 'throttled' | 'transient' | 'permanent';

/** Throttling and 5xx (and dropped connections) are worth another try; everything else is an answer. */
export function classifyFailure(err: unknown): FailureKind {
  const e = shape(err);
  const code = errorCode(err);
  const status = e.$metadata?.httpStatusCode;
  if (THROTTLING_CODES.has(code) || status === 429) return 'throttled';
  if (SERVER_CODES.has(code) || NETWORK_CODES.has(code) || (status !== undefined && status >= 500)) return 'transient';
  return 'permanent';
}

/** Turns whatever an AWS call threw into a CloudError that names the call, the code and the resources. */
export function toCloudError(err: unknown, operation: string, context: ErrorContext, retryable = false): CloudError {
  if (err instanceof CloudError) return err;
  const code = errorCode(err);
  const explanation = EXPLANATIONS[code] ?? (classifyFailure(err) === 'throttled' ? EXPLANATIONS.RequestLimitExceeded : undefined);
  const awsMessage = shape(err).message ?? String(err);
  const message = `${operation} failed: ${explanation ? `${explanation}: ` : ''}${awsMessage} [${code}]`;
  return new CloudError(message, code, { ...context, requestId: requestIdOf(err) }, { cause: err, retryable });
}

/** True when `err` is a CloudError carrying one of `codes`. */
export function hasCode(err: unknown, ...codes: string[]): err is CloudError {
  return err instanceof CloudError && codes.includes(err.code);
}

/** The CSI driver's ErrNotFound: the resource named in the call does not exist. */
export function isNotFound(err: unknown): err is CloudError {
  return hasCode(err, Ec2Code.VolumeNotFound, Ec2Code.InstanceNotFound, Ec2Code.AttachmentNotFound, Ec2Code.SnapshotNotFound);
}
