/**
 * The volume options every layer shares: their names, their allowed values and the published EBS
 * limits. Parsing a Create's `--opt`s lives in `plugin/options/`; the rules for single values
 * (`option-rules.ts`) are shared with whatever reads options back from tags.
 */
export const BACKINGS = ['relocatable', 'shared', 'nfs'] as const;
export type Backing = (typeof BACKINGS)[number];

export const EBS_TYPES = ['gp3', 'gp2', 'io1', 'io2', 'st1', 'sc1', 'standard'] as const;
export type EbsType = (typeof EBS_TYPES)[number];

export const FILESYSTEMS = ['ext4', 'xfs'] as const;
export type Filesystem = (typeof FILESYSTEMS)[number];

export const PERF_MODES = ['generalpurpose', 'maxio'] as const;
export type PerfMode = (typeof PERF_MODES)[number];

/**
 * Mount options that tune speed without trading away durability (no `nobarrier`, no
 * `data=writeback`). Volumes are mounted nosuid,nodev unless `suid` or `dev` is asked for.
 */
export const MOUNT_OPTS_ALLOWED: Record<Filesystem, readonly string[]> = {
  ext4: ['noatime', 'nodiratime', 'relatime', 'lazytime', 'discard', 'nodiscard', 'data=ordered', 'data=journal', 'suid', 'dev'],
  xfs: ['noatime', 'nodiratime', 'relatime', 'lazytime', 'discard', 'nodiscard', 'suid', 'dev'],
};

/** Backups kept when `backupretain` is not given. */
export const DEFAULT_BACKUP_RETAIN = 7;

/** EBS's provisioned rate for volume initialization (MiB/s), for volumes created from snapshots. */
export const INIT_RATE = { min: 100, max: 300 } as const;

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
  /** Relocatable: interval of scheduled backups, canonical (`30m`, `6h`, `1d`, `90s`); absent: none. */
  backup?: string;
  /** Relocatable: backups kept (7 unless given). */
  backupretain?: number;
  /** Relocatable: region every completed backup is copied to, for disaster recovery. */
  drregion?: string;
  /** Relocatable: EBS volume initialization rate (MiB/s) sent with every CreateVolume from a snapshot. */
  initrate?: number;
}

export type OptionKey = keyof VolumeOptions;
export const OPTION_KEYS: readonly OptionKey[] = [
  'backing', 'size', 'ebstype', 'iops', 'throughput', 'encrypted', 'kmskeyid', 'snapshot', 'fs',
  'mountopts', 'perfmode', 'uid', 'gid', 'mode', 'share', 'backup', 'backupretain', 'drregion', 'initrate',
];

/** Which backings accept which keys; anything else given for a backing is refused, not ignored. */
export const KEYS_BY_BACKING: Record<Backing, readonly OptionKey[]> = {
  relocatable: [
    'backing', 'size', 'ebstype', 'iops', 'throughput', 'encrypted', 'kmskeyid', 'snapshot', 'fs', 'mountopts',
    'uid', 'gid', 'mode', 'backup', 'backupretain', 'drregion', 'initrate',
  ],
  shared: ['backing', 'perfmode', 'uid', 'gid', 'mode'],
  nfs: ['backing', 'share', 'uid', 'gid', 'mode'],
};
