import { InvalidOptionError } from './errors.js';

export const BACKINGS = ['relocatable', 'shared', 'nfs'] as const;
export type Backing = (typeof BACKINGS)[number];

export const EBS_TYPES = ['gp3', 'gp2', 'io1', 'io2', 'st1', 'sc1', 'standard'] as const;
export type EbsType = (typeof EBS_TYPES)[number];

export const FILESYSTEMS = ['ext4', 'xfs'] as const;
export type Filesystem = (typeof FILESYSTEMS)[number];

export const PERF_MODES = ['generalpurpose', 'maxio'] as const;
export type PerfMode = (typeof PERF_MODES)[number];

/** Mount options that tune speed without trading away durability (no `nobarrier`, no `data=writeback`). */
const MOUNT_OPTS_ALLOWED: Record<Filesystem, readonly string[]> = {
  ext4: ['noatime', 'nodiratime', 'relatime', 'lazytime', 'discard', 'nodiscard', 'data=ordered', 'data=journal'],
  xfs: ['noatime', 'nodiratime', 'relatime', 'lazytime', 'discard', 'nodiscard'],
};

/** Published EBS limits per volume type (GiB, IOPS, MiB/s). */
export interface EbsTypeLimits {
  minSize: number;
  maxSize: number;
  /** undefined: IOPS cannot be set for this type. */
  iops?: { min: number; max: number; perGiB: number; baseline: number };
  throughput?: { min: number; max: number; perIops: number; baseline: number };
}

export const EBS_LIMITS: Record<EbsType, EbsTypeLimits> = {
  gp3: {
    minSize: 1,
    maxSize: 16384,
    iops: { min: 3000, max: 16000, perGiB: 500, baseline: 3000 },
    throughput: { min: 125, max: 1000, perIops: 0.25, baseline: 125 },
  },
  gp2: { minSize: 1, maxSize: 16384 },
  io1: { minSize: 4, maxSize: 16384, iops: { min: 100, max: 64000, perGiB: 50, baseline: 3000 } },
  io2: { minSize: 4, maxSize: 65536, iops: { min: 100, max: 256000, perGiB: 1000, baseline: 3000 } },
  st1: { minSize: 125, maxSize: 16384 },
  sc1: { minSize: 125, maxSize: 16384 },
  standard: { minSize: 1, maxSize: 1024 },
};

/** A volume's options after validation, with every default filled in. */
export interface VolumeOptions {
  backing: Backing;
  size: number;
  ebstype: EbsType;
  iops?: number;
  throughput?: number;
  encrypted: boolean;
  kmskeyid?: string;
  snapshot?: string;
  fs: Filesystem;
  mountopts: string[];
  perfmode: PerfMode;
  uid: number;
  gid: number;
  mode: string;
  share?: string;
}

export type OptionKey = keyof VolumeOptions;
export const OPTION_KEYS: readonly OptionKey[] = [
  'backing', 'size', 'ebstype', 'iops', 'throughput', 'encrypted', 'kmskeyid', 'snapshot', 'fs',
  'mountopts', 'perfmode', 'uid', 'gid', 'mode', 'share',
];

/** Which backings accept which keys; anything else given for a backing is refused, not ignored. */
const KEYS_BY_BACKING: Record<Backing, readonly OptionKey[]> = {
  relocatable: ['backing', 'size', 'ebstype', 'iops', 'throughput', 'encrypted', 'kmskeyid', 'snapshot', 'fs', 'mountopts'],
  shared: ['backing', 'perfmode', 'uid', 'gid', 'mode'],
  nfs: ['backing', 'share', 'uid', 'gid', 'mode'],
};

export interface ParsedOptions {
  options: VolumeOptions;
  /** The keys the user gave; a Create of an existing volume is compared on these only. */
  given: OptionKey[];
}

const WHOLE_NUMBER = /^(0|[1-9][0-9]{0,9})$/;
const SNAPSHOT_ID = /^snap-[0-9a-f]{8,17}$/;
const KMS_KEY = /^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)\/[A-Za-z0-9/_-]{1,256}|alias\/[A-Za-z0-9/_-]{1,256}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$/;
const MODE = /^0?[0-7]{3}$/;
const SHARE = /^([A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*):(\/[A-Za-z0-9._/-]*)$/;

/** A non-string value named by its kind: serialising a deeply nested one could exhaust the stack. */
function describeValue(value: unknown): string {
  if (Array.isArray(value)) return '(an array)';
  if (value !== null && typeof value === 'object') return '(an object)';
  return String(value);
}

function oneOf<T extends string>(key: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new InvalidOptionError(key, value, `allowed: ${allowed.join(', ')}`);
}

function wholeNumber(key: string, value: string, min: number, max: number, what: string): number {
  if (!WHOLE_NUMBER.test(value)) throw new InvalidOptionError(key, value, `a whole number ${what}`);
  const n = Number(value);
  if (n < min || n > max) throw new InvalidOptionError(key, value, `a whole number from ${min} to ${max} ${what}`);
  return n;
}

function bool(key: string, value: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new InvalidOptionError(key, value, 'allowed: true, false');
}

/**
 * Validates `--opt` values from a Create. Unknown keys, values outside the allowed set, and keys
 * that do not apply to the chosen backing are refused with a message naming key, value and what is
 * allowed. Nothing may be created before this returns.
 */
export function parseOptions(raw: unknown, defaultBacking: Backing): ParsedOptions {
  if (raw === undefined || raw === null) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new InvalidOptionError('Opts', describeValue(raw), 'an object of string keys and string values');
  }
  const opts = raw as Record<string, unknown>;
  const given: OptionKey[] = [];
  const values = new Map<OptionKey, string>();
  for (const [key, value] of Object.entries(opts)) {
    if (!(OPTION_KEYS as readonly string[]).includes(key)) {
      throw new InvalidOptionError(key, describeValue(value), `unknown option; known options: ${OPTION_KEYS.join(', ')}`);
    }
    if (typeof value !== 'string') {
      throw new InvalidOptionError(key, describeValue(value), 'a string value');
    }
    given.push(key as OptionKey);
    values.set(key as OptionKey, value.trim());
  }

  const backing = values.has('backing') ? oneOf('backing', values.get('backing')!, BACKINGS) : defaultBacking;
  const allowedKeys = KEYS_BY_BACKING[backing];
  for (const key of given) {
    if (!allowedKeys.includes(key)) {
      throw new InvalidOptionError(key, values.get(key)!, `does not apply to backing=${backing} (its options: ${allowedKeys.join(', ')})`);
    }
  }

  const ebstype = values.has('ebstype') ? oneOf('ebstype', values.get('ebstype')!, EBS_TYPES) : 'gp3';
  const limits = EBS_LIMITS[ebstype];
  const size = values.has('size')
    ? wholeNumber('size', values.get('size')!, limits.minSize, limits.maxSize, `GiB for ebstype=${ebstype}`)
    : 10;
  if (backing === 'relocatable' && (size < limits.minSize || size > limits.maxSize)) {
    throw new InvalidOptionError('size', String(size), `ebstype=${ebstype} needs a size from ${limits.minSize} to ${limits.maxSize} GiB; give --opt size`);
  }

  let iops: number | undefined;
  let throughput: number | undefined;
  if (backing === 'relocatable') {
    if (limits.iops) {
      const ceiling = Math.min(limits.iops.max, limits.iops.perGiB * size);
      if (values.has('iops')) {
        iops = wholeNumber('iops', values.get('iops')!, limits.iops.min, ceiling, `for ebstype=${ebstype} at size=${size} (at most ${limits.iops.perGiB} per GiB)`);
      } else {
        iops = Math.max(limits.iops.min, Math.min(limits.iops.baseline, ceiling));
      }
    } else if (values.has('iops')) {
      throw new InvalidOptionError('iops', values.get('iops')!, `ebstype=${ebstype} has no settable IOPS (settable for gp3, io1, io2)`);
    }
    if (limits.throughput) {
      const ceiling = Math.min(limits.throughput.max, Math.floor(limits.throughput.perIops * (iops ?? 0)));
      throughput = values.has('throughput')
        ? wholeNumber('throughput', values.get('throughput')!, limits.throughput.min, ceiling, `MiB/s for ebstype=${ebstype} at iops=${iops} (at most ${limits.throughput.perIops} per IOPS)`)
        : limits.throughput.baseline;
    } else if (values.has('throughput')) {
      throw new InvalidOptionError('throughput', values.get('throughput')!, `ebstype=${ebstype} has no settable throughput (settable for gp3)`);
    }
  }

  const encrypted = values.has('encrypted') ? bool('encrypted', values.get('encrypted')!) : true;
  let kmskeyid: string | undefined;
  if (values.has('kmskeyid')) {
    kmskeyid = values.get('kmskeyid')!;
    if (!KMS_KEY.test(kmskeyid)) {
      throw new InvalidOptionError('kmskeyid', kmskeyid, 'a KMS key id, alias/NAME, or key or alias ARN');
    }
    if (!encrypted) throw new InvalidOptionError('kmskeyid', kmskeyid, 'needs encrypted=true');
  }

  let snapshot: string | undefined;
  if (values.has('snapshot')) {
    snapshot = values.get('snapshot')!;
    if (!SNAPSHOT_ID.test(snapshot)) throw new InvalidOptionError('snapshot', snapshot, 'a snapshot id such as snap-0123456789abcdef0');
  }

  const fs = values.has('fs') ? oneOf('fs', values.get('fs')!, FILESYSTEMS) : 'ext4';
  const mountopts: string[] = [];
  if (values.has('mountopts') && values.get('mountopts') !== '') {
    for (const opt of values.get('mountopts')!.split(',').map((o) => o.trim())) {
      if (!MOUNT_OPTS_ALLOWED[fs].includes(opt)) {
        throw new InvalidOptionError('mountopts', opt, `allowed for fs=${fs}: ${MOUNT_OPTS_ALLOWED[fs].join(', ')}`);
      }
      if (!mountopts.includes(opt)) mountopts.push(opt);
    }
  }

  const perfmode = values.has('perfmode') ? oneOf('perfmode', values.get('perfmode')!, PERF_MODES) : 'generalpurpose';
  const uid = values.has('uid') ? wholeNumber('uid', values.get('uid')!, 0, 4294967294, '(a numeric user id)') : 0;
  const gid = values.has('gid') ? wholeNumber('gid', values.get('gid')!, 0, 4294967294, '(a numeric group id)') : 0;
  let mode = '0755';
  if (values.has('mode')) {
    const m = values.get('mode')!;
    if (!MODE.test(m)) throw new InvalidOptionError('mode', m, 'an octal permission mode such as 0755 or 775');
    mode = m.padStart(4, '0');
  }

  let share: string | undefined;
  if (backing === 'nfs') {
    if (!values.has('share')) throw new InvalidOptionError('share', '', 'backing=nfs needs share=host:/export');
    share = values.get('share')!;
    const path = SHARE.exec(share)?.[4];
    if (path === undefined || path.split('/').some((part) => part === '..' || part === '.')) {
      throw new InvalidOptionError('share', share, 'host:/export, with a host name or IPv4 address and an absolute path without . or ..');
    }
  }

  const options: VolumeOptions = {
    backing, size, ebstype, encrypted, fs, mountopts, perfmode, uid, gid, mode,
    ...(iops !== undefined && { iops }),
    ...(throughput !== undefined && { throughput }),
    ...(kmskeyid !== undefined && { kmskeyid }),
    ...(snapshot !== undefined && { snapshot }),
    ...(share !== undefined && { share }),
  };
  return { options, given };
}

/** The given keys on which a requested Create disagrees with an existing volume's options. */
export function conflictingKeys(requested: ParsedOptions, existing: Partial<VolumeOptions>): OptionKey[] {
  return requested.given.filter((key) => {
    const have = existing[key];
    if (have === undefined) return false;
    return JSON.stringify(have) !== JSON.stringify(requested.options[key]);
  });
}
