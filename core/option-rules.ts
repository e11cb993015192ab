import { InvalidOptionError } from './errors.js';
import { MOUNT_OPTS_ALLOWED, type Filesystem } from './volume-options.js';

/**
 * The rules for one option value, shared by a Create's parser and by whatever reads a value back
 * from a tag (tags are input too: DESIGN.md "Tags"). Each throws InvalidOptionError naming the key,
 * the value and what is allowed.
 */
/** Docker's own rule for volume names is looser; this one is safe as a path component and a tag value. */
export const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/;
const WHOLE_NUMBER = /^(0|[1-9][0-9]{0,9})$/;
const SNAPSHOT_ID = /^snap-[0-9a-f]{8,17}$/;
const KMS_KEY = /^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)\/[A-Za-z0-9/_-]{1,256}|alias\/[A-Za-z0-9/_-]{1,256}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$/;
const MODE = /^0?[0-7]{3}$/;
const SHARE = /^([A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*):(\/[A-Za-z0-9._/-]*)$/;

export function oneOf<T extends string>(key: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new InvalidOptionError(key, value, `allowed: ${allowed.join(', ')}`);
}

export function wholeNumber(key: string, value: string, min: number, max: number, what: string): number {
  if (!WHOLE_NUMBER.test(value)) throw new InvalidOptionError(key, value, `a whole number ${what}`);
  const n = Number(value);
  if (n < min || n > max) throw new InvalidOptionError(key, value, `a whole number from ${min} to ${max} ${what}`);
  return n;
}

export function bool(key: string, value: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new InvalidOptionError(key, value, 'allowed: true, false');
}

export function snapshotId(key: string, value: string): string {
  if (!SNAPSHOT_ID.test(value)) throw new InvalidOptionError(key, value, 'a snapshot id such as snap-0123456789abcdef0');
  return value;
}

export function kmsKeyId(key: string, value: string): string {
  if (!KMS_KEY.test(value)) throw new InvalidOptionError(key, value, 'a KMS key id, alias/NAME, or key or alias ARN');
  return value;
}

/** `0755` from `755` or `0755`. */
export function octalMode(key: string, value: string): string {
  if (!MODE.test(value)) throw new InvalidOptionError(key, value, 'an octal permission mode such as 0755 or 775');
  return value.padStart(4, '0');
}

/** A comma list of mount options, each from the filesystem's allow-list; duplicates dropped. */
export function mountOptions(key: string, value: string, fs: Filesystem): string[] {
  const opts: string[] = [];
  if (value === '') return opts;
  for (const opt of value.split(',').map((o) => o.trim())) {
    if (!MOUNT_OPTS_ALLOWED[fs].includes(opt)) {
      throw new InvalidOptionError(key, opt, `allowed for fs=${fs}: ${MOUNT_OPTS_ALLOWED[fs].join(', ')}`);
    }
    if (!opts.includes(opt)) opts.push(opt);
  }
  return opts;
}

const INTERVAL = /^([1-9][0-9]{0,5})(s|m|h|d)$/;
const INTERVAL_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const REGION = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$/;

/** A backup interval (`30m`, `6h`, `1d`; seconds for tests) in ms, at least `minMs`. */
export function interval(key: string, value: string, minMs: number): number {
  const m = INTERVAL.exec(value);
  if (!m) throw new InvalidOptionError(key, value, 'an interval such as 30m, 6h or 1d');
  const ms = Number(m[1]) * INTERVAL_MS[m[2] as keyof typeof INTERVAL_MS];
  if (ms < minMs) throw new InvalidOptionError(key, value, `at least ${minMs / 1000}s (STOWAGE_BACKUP_MIN_INTERVAL)`);
  return ms;
}

/** An AWS region name such as us-west-2. */
export function region(key: string, value: string): string {
  if (!REGION.test(value)) throw new InvalidOptionError(key, value, 'an AWS region such as us-west-2');
  return value;
}

/** `host:/export`, with an absolute path that climbs nowhere. */
export function nfsShare(key: string, value: string): string {
  const path = SHARE.exec(value)?.[4];
  if (path === undefined || path.split('/').some((part) => part === '..' || part === '.')) {
    throw new InvalidOptionError(key, value, 'host:/export, with a host name or IPv4 address and an absolute path without . or ..');
  }
  return value;
}
