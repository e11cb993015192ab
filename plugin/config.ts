import path from 'node:path';
import { FENCE_MODES, type FenceMode } from '../drivers/ebs/fencing.js';
import { ConfigError } from '../core/errors.js';
import { BACKINGS, EBS_LIMITS, type Backing } from '../core/volume-options.js';
import { isLogLevel } from '../core/log.js';
import type { Level } from 'pino';
import type { CostLimits, LifecycleDefaults } from './options/relocatable.js';
import { interval, kmsKeyId } from '../core/option-rules.js';

/** The plugin's settings, read once at start from the environment (`Settable` in config.json). */
export interface Config {
  backend: 'aws' | 'local';
  region: string | undefined;
  endpointUrl: string | undefined;
  cluster: string;
  defaultBacking: Backing;
  efsId: string | undefined;
  efsMaxioId: string | undefined;
  efsMode: 'directory' | 'accesspoint';
  socket: string;
  mountRoot: string;
  stateDir: string;
  mountTimeoutMs: number;
  deviceDir: string;
  instanceId: string | undefined;
  az: string | undefined;
  logLevel: Level;
  metricsAddr: { host: string; port: number } | undefined;
  localcloudUrl: string | undefined;
  localcloudDir: string | undefined;
  fenceAfterMs: number;
  fenceMode: FenceMode;
  snapshotOnUnmount: boolean;
  /** Snapshots kept per relocatable volume after a move or an unmount snapshot. */
  snapshotRetain: number;
  sharedDelete: boolean;
  /** `json`, `text`, or undefined: text on a terminal, JSON otherwise. */
  logFormat: 'json' | 'text' | undefined;
  /** Where an embedded localcloud listens (the `stowage` CLI finds it through STOWAGE_STATE_DIR). */
  localcloudListen: { host: string; port: number };
  /** STOWAGE_MAX_SIZE_GIB and STOWAGE_MAX_IOPS: what a Create may cost, below EBS's own limits. */
  cost: CostLimits;
  /** STOWAGE_BACKUP_DEFAULT and STOWAGE_BACKUP_MIN_INTERVAL: the lifecycle options' defaults and floors for a Create. */
  lifecycle: LifecycleDefaults;
  /** STOWAGE_DR_KMS_KEY_ID: the DR region's key for the copies of backups (snapshot/dr-copy.ts). */
  drKmsKeyId: string | undefined;
}

export interface Setting {
  /** As `stowage plugin --help` shows it; loadConfig's fallback is the same value. */
  default: string;
  meaning: string;
  /** A development setting the managed plugin (config.json) does not offer. */
  devOnly?: true;
}

/**
 * Every setting the plugin reads. loadConfig reads a variable only through this table's names,
 * and `stowage plugin --help` prints it, so the help cannot drift from the code.
 */
export const SETTINGS = {
  STOWAGE_BACKEND: { default: 'aws', meaning: 'aws, or local for the localcloud emulator (development only: npm start or stowage plugin --dev)', devOnly: true },
  STOWAGE_LOCALCLOUD_URL: { default: '', meaning: 'with local: a running localcloud to use instead of an embedded one', devOnly: true },
  STOWAGE_LOCALCLOUD_DIR: { default: '', meaning: 'with STOWAGE_LOCALCLOUD_URL: that localcloud\'s folder', devOnly: true },
  STOWAGE_LOCALCLOUD_LISTEN: { default: '127.0.0.1:4580', meaning: 'with local: where the embedded localcloud listens; stowage commands find it through STOWAGE_STATE_DIR', devOnly: true },
  AWS_REGION: { default: '', meaning: 'region of the AWS APIs (empty: from instance metadata)' },
  AWS_ENDPOINT_URL: { default: '', meaning: 'endpoint of the AWS APIs (VPC endpoints, a localcloud); empty: AWS\'s' },
  STOWAGE_CLUSTER: { default: 'default', meaning: 'cluster name; every resource is tagged stowage:cluster=<name> and Stowage touches nothing else' },
  STOWAGE_DEFAULT_BACKING: { default: 'shared', meaning: 'backing when a Create gives none: relocatable, shared or nfs (shared, as Cloudstor)' },
  STOWAGE_EFS_ID: { default: '', meaning: 'EFS file system of shared volumes' },
  STOWAGE_EFS_MAXIO_ID: { default: '', meaning: 'EFS file system of shared volumes with perfmode=maxio' },
  STOWAGE_EFS_MODE: { default: 'directory', meaning: 'a shared volume is a directory or an access point: directory, accesspoint' },
  STOWAGE_SOCKET: { default: '/run/docker/plugins/stowage.sock', meaning: 'the plugin\'s unix socket' },
  STOWAGE_MOUNT_ROOT: { default: '/mnt/stowage', meaning: 'where volumes are mounted (the managed plugin\'s PropagatedMount)' },
  STOWAGE_STATE_DIR: { default: '/var/lib/stowage', meaning: 'mount reference counts, the start lock, an embedded localcloud\'s state' },
  STOWAGE_MOUNT_TIMEOUT: { default: '100s', meaning: 'a Mount answers within this (dockerd allows 120 s); longer work goes on in the background' },
  STOWAGE_DEVICE_DIR: { default: '/dev/disk/by-id', meaning: 'where block devices appear by volume id' },
  STOWAGE_INSTANCE_ID: { default: '', meaning: 'this node\'s instance id, overriding IMDS (with STOWAGE_AZ)' },
  STOWAGE_AZ: { default: '', meaning: 'this node\'s availability zone, overriding IMDS (with STOWAGE_INSTANCE_ID)' },
  STOWAGE_FENCE: { default: 'heartbeat', meaning: 'when another node\'s hold on a volume may be broken: heartbeat (stopped, or heartbeat unchanged for STOWAGE_FENCE_AFTER), stopped, off' },
  STOWAGE_FENCE_AFTER: { default: '120s', meaning: 'a holder whose heartbeat has not changed for this long (on this node\'s clock) may be force-detached' },
  STOWAGE_SNAPSHOT_ON_UNMOUNT: { default: 'true', meaning: 'start an incremental snapshot after each clean unmount: true, false' },
  STOWAGE_SNAPSHOT_RETAIN: { default: '1', meaning: 'completed snapshots kept per relocatable volume (older ones are deleted)' },
  STOWAGE_SHARED_DELETE: { default: 'false', meaning: 'delete a shared volume\'s data at Remove instead of moving it aside: true, false' },
  STOWAGE_LOG_LEVEL: { default: 'info', meaning: 'fatal, error, warn, info, debug or trace' },
  STOWAGE_LOG_FORMAT: { default: '', meaning: 'json or text; empty: text on a terminal, JSON lines otherwise', devOnly: true },
  STOWAGE_METRICS_ADDR: { default: '', meaning: 'host:port for Prometheus metrics (empty: off; :port is 127.0.0.1 only, name a host for more)' },
  STOWAGE_MAX_SIZE_GIB: { default: '1024', meaning: 'largest relocatable volume a Create may ask for, in GiB (EBS allows up to 16384, io2 65536)' },
  STOWAGE_MAX_IOPS: { default: '16000', meaning: 'most provisioned IOPS a Create may ask for (gp3 allows up to 16000, io2 256000)' },
  STOWAGE_BACKUP_DEFAULT: { default: 'off', meaning: 'backup interval of relocatable volumes whose Create gives no backup option: off, or such as 30m, 6h, 1d' },
  STOWAGE_BACKUP_MIN_INTERVAL: { default: '1m', meaning: 'shortest backup interval a Create may ask for, such as 1m or 10s (below 1m: for tests)' },
  STOWAGE_DR_REGION: { default: '', meaning: 'region every backup of a relocatable volume is copied to when its Create gives no drregion (empty: none)' },
  STOWAGE_DR_KMS_KEY_ID: { default: '', meaning: 'KMS key of the DR region (id, alias or ARN) that encrypts the DR copies (empty: that region\'s default EBS key)' },
} as const satisfies Record<string, Setting>;

export type SettingName = keyof typeof SETTINGS;

/** The settings as `stowage plugin --help` lists them: name, default, meaning. */
export function settingsHelp(): string {
  const rows = Object.entries(SETTINGS as Record<SettingName, Setting>);
  const width = Math.max(...rows.map(([name]) => name.length));
  return rows
    .map(([name, s]) => `  ${name.padEnd(width)}  ${s.meaning}${s.default === '' ? '' : ` (default ${s.default})`}`)
    .join('\n') + '\n';
}

type Env = Record<string, string | undefined>;

const CLUSTER = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const DURATION = /^([0-9]{1,6})(ms|s|m)?$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-[0-9]+$/;
const ZONE = /^[a-z]{2}(-[a-z]+)+-[0-9]+[a-z]$/;
const INSTANCE = /^i-[0-9a-f]{8,17}$/;
const EFS_ID = /^fs-[0-9a-f]{8,40}$/;

function fail(variable: SettingName, value: string | undefined, expected: string): never {
  throw new ConfigError(`${variable}=${JSON.stringify(value ?? '')} is not valid: expected ${expected}`);
}

/** The variable's value, or its default from SETTINGS; '' when neither is set. */
function read(env: Env, variable: SettingName): string {
  const value = env[variable];
  return value === undefined || value === '' ? SETTINGS[variable].default : value;
}

function choice<T extends string>(env: Env, variable: SettingName, allowed: readonly T[], fallback?: T): T {
  const value = env[variable] || fallback || SETTINGS[variable].default;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  return fail(variable, value, `one of ${allowed.join(', ')}`);
}

function flag(env: Env, variable: SettingName): boolean {
  return choice(env, variable, ['true', 'false']) === 'true';
}

/** Seconds by default; `ms`, `s` and `m` suffixes accepted. */
function duration(env: Env, variable: SettingName, minMs: number, maxMs: number): number {
  const value = read(env, variable);
  const m = DURATION.exec(value);
  if (!m) return fail(variable, value, 'a duration such as 100, 100s, 90000ms or 2m');
  const unit = m[2] ?? 's';
  const ms = Number(m[1]) * (unit === 'ms' ? 1 : unit === 's' ? 1000 : 60000);
  if (ms < minMs || ms > maxMs) return fail(variable, value, `between ${minMs / 1000}s and ${maxMs / 1000}s`);
  return ms;
}

/** A bound the operator sets: 1 to max, so that it can never forbid everything by accident as 0 would. */
function bound(env: Env, variable: SettingName, max: number): number {
  const value = read(env, variable);
  if (!/^[1-9][0-9]{0,5}$/.test(value) || Number(value) > max) return fail(variable, value, `a whole number from 1 to ${max}`);
  return Number(value);
}

function count(env: Env, variable: SettingName, max: number): number {
  const value = read(env, variable);
  if (!/^[0-9]{1,4}$/.test(value) || Number(value) > max) return fail(variable, value, `a whole number from 0 to ${max}`);
  return Number(value);
}

/** A backup interval in the option's own syntax (`30s`, `30m`, `6h`, `1d`), at least minMs. */
function backupInterval(env: Env, variable: SettingName, minMs: number): { text: string; ms: number } {
  const value = read(env, variable);
  try {
    return { text: value, ms: interval(variable, value, minMs) };
  } catch {
    return fail(variable, value, `an interval such as 30m, 6h or 1d, at least ${minMs / 1000}s`);
  }
}

/** STOWAGE_BACKUP_DEFAULT is checked against STOWAGE_BACKUP_MIN_INTERVAL now, not at every Create. */
function lifecycleDefaults(env: Env): LifecycleDefaults {
  const backupMinIntervalMs = backupInterval(env, 'STOWAGE_BACKUP_MIN_INTERVAL', 1000).ms;
  const backup = read(env, 'STOWAGE_BACKUP_DEFAULT');
  if (backup === 'off') return { backupMinIntervalMs };
  return { backupMinIntervalMs, backup: backupInterval(env, 'STOWAGE_BACKUP_DEFAULT', backupMinIntervalMs).text };
}

/** STOWAGE_DR_REGION: a region other than the cluster's own (a copy to itself recovers nothing). */
function drRegionDefault(env: Env, home: string | undefined): Pick<LifecycleDefaults, 'drregion'> {
  const value = optionalMatching(env, 'STOWAGE_DR_REGION', REGION, 'an AWS region such as us-west-2, or empty');
  if (value !== undefined && value === home) fail('STOWAGE_DR_REGION', value, `a region other than AWS_REGION=${home}, the cluster's own`);
  return value === undefined ? {} : { drregion: value };
}

/** STOWAGE_DR_KMS_KEY_ID, by the `kmskeyid` option's rule. */
function drKmsKey(env: Env): string | undefined {
  const value = read(env, 'STOWAGE_DR_KMS_KEY_ID');
  if (value === '') return undefined;
  try {
    return kmsKeyId('STOWAGE_DR_KMS_KEY_ID', value);
  } catch {
    return fail('STOWAGE_DR_KMS_KEY_ID', value, 'a KMS key id, alias/NAME, or key or alias ARN of the DR region');
  }
}

function optionalPath(env: Env, variable: SettingName): string | undefined {
  const value = read(env, variable);
  if (value === '') return undefined;
  if (!path.isAbsolute(value) || value.split('/').includes('..')) return fail(variable, value, 'an absolute path without ..');
  return path.normalize(value);
}

function absolutePath(env: Env, variable: SettingName): string {
  return optionalPath(env, variable) ?? fail(variable, '', 'an absolute path without ..');
}

function optionalMatching(env: Env, variable: SettingName, pattern: RegExp, expected: string): string | undefined {
  const value = read(env, variable);
  if (value === '') return undefined;
  if (!pattern.test(value)) return fail(variable, value, expected);
  return value;
}

function url(env: Env, variable: SettingName): string | undefined {
  const value = read(env, variable);
  if (value === '') return undefined;
  try {
    const parsed = new URL(value);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('scheme');
  } catch {
    return fail(variable, value, 'an http:// or https:// URL');
  }
  return value.replace(/\/+$/, '');
}

function listenAddress(env: Env, variable: SettingName): { host: string; port: number } | undefined {
  const value = read(env, variable);
  if (value === '') return undefined;
  const m = /^(.*):([0-9]{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) return fail(variable, value, 'host:port, such as 127.0.0.1:9337 or :9337');
  // A bare :port is loopback: other interfaces only when the operator names one.
  return { host: m[1] === '' ? '127.0.0.1' : m[1]!, port };
}

/** Reads and checks every setting; the first bad one stops the start with a ConfigError naming it. */
export function loadConfig(env: Env = process.env, defaults: { backend?: 'aws' | 'local' } = {}): Config {
  const backend = choice(env, 'STOWAGE_BACKEND', ['aws', 'local'], defaults.backend);
  const instanceId = optionalMatching(env, 'STOWAGE_INSTANCE_ID', INSTANCE, 'an EC2 instance id such as i-0123456789abcdef0');
  const az = optionalMatching(env, 'STOWAGE_AZ', ZONE, 'an availability zone such as us-east-1a');
  if ((instanceId === undefined) !== (az === undefined)) {
    fail(instanceId === undefined ? 'STOWAGE_INSTANCE_ID' : 'STOWAGE_AZ', undefined, 'STOWAGE_INSTANCE_ID and STOWAGE_AZ are set together or not at all');
  }
  const localcloudUrl = url(env, 'STOWAGE_LOCALCLOUD_URL');
  const localcloudDir = optionalPath(env, 'STOWAGE_LOCALCLOUD_DIR');
  if (localcloudUrl !== undefined && localcloudDir === undefined) {
    fail('STOWAGE_LOCALCLOUD_DIR', undefined, 'the folder of the localcloud at STOWAGE_LOCALCLOUD_URL');
  }
  const logLevel = read(env, 'STOWAGE_LOG_LEVEL');
  if (!isLogLevel(logLevel)) fail('STOWAGE_LOG_LEVEL', logLevel, 'one of fatal, error, warn, info, debug, trace');
  const logFormat = read(env, 'STOWAGE_LOG_FORMAT');
  if (logFormat !== '' && logFormat !== 'json' && logFormat !== 'text') fail('STOWAGE_LOG_FORMAT', logFormat, 'json or text');
  const cluster = read(env, 'STOWAGE_CLUSTER');
  if (!CLUSTER.test(cluster)) fail('STOWAGE_CLUSTER', cluster, 'letters, digits, _ . - (at most 63), starting with a letter or digit');
  const metricsAddr = listenAddress(env, 'STOWAGE_METRICS_ADDR');
  if (metricsAddr?.port === 0) fail('STOWAGE_METRICS_ADDR', env.STOWAGE_METRICS_ADDR, 'a port from 1 to 65535');

  return {
    backend,
    region: optionalMatching(env, 'AWS_REGION', REGION, 'an AWS region such as us-east-1'),
    endpointUrl: url(env, 'AWS_ENDPOINT_URL'),
    cluster,
    defaultBacking: choice(env, 'STOWAGE_DEFAULT_BACKING', BACKINGS),
    efsId: optionalMatching(env, 'STOWAGE_EFS_ID', EFS_ID, 'an EFS file system id such as fs-0123456789abcdef0'),
    efsMaxioId: optionalMatching(env, 'STOWAGE_EFS_MAXIO_ID', EFS_ID, 'an EFS file system id such as fs-0123456789abcdef0'),
    efsMode: choice(env, 'STOWAGE_EFS_MODE', ['directory', 'accesspoint']),
    socket: absolutePath(env, 'STOWAGE_SOCKET'),
    mountRoot: absolutePath(env, 'STOWAGE_MOUNT_ROOT'),
    stateDir: absolutePath(env, 'STOWAGE_STATE_DIR'),
    // dockerd gives Mount 120 s; leave room for the answer to travel.
    mountTimeoutMs: duration(env, 'STOWAGE_MOUNT_TIMEOUT', 1000, 115_000),
    deviceDir: absolutePath(env, 'STOWAGE_DEVICE_DIR'),
    instanceId,
    az,
    logLevel,
    logFormat: logFormat === '' ? undefined : logFormat,
    metricsAddr,
    localcloudUrl,
    localcloudDir,
    // Port 0 (any free port) is for tests that run several embedded localclouds at once.
    localcloudListen: listenAddress(env, 'STOWAGE_LOCALCLOUD_LISTEN')!,
    fenceAfterMs: duration(env, 'STOWAGE_FENCE_AFTER', 1000, 3_600_000),
    fenceMode: choice(env, 'STOWAGE_FENCE', FENCE_MODES),
    snapshotOnUnmount: flag(env, 'STOWAGE_SNAPSHOT_ON_UNMOUNT'),
    snapshotRetain: count(env, 'STOWAGE_SNAPSHOT_RETAIN', 1000),
    sharedDelete: flag(env, 'STOWAGE_SHARED_DELETE'),
    cost: { maxSizeGiB: bound(env, 'STOWAGE_MAX_SIZE_GIB', EBS_LIMITS.io2.maxSize), maxIops: bound(env, 'STOWAGE_MAX_IOPS', EBS_LIMITS.io2.iops!.max) },
    lifecycle: { ...lifecycleDefaults(env), ...drRegionDefault(env, read(env, 'AWS_REGION') || undefined) },
    drKmsKeyId: drKmsKey(env),
  };
}
