import path from 'node:path';
import { ConfigError } from '../core/errors.js';
import { BACKINGS, type Backing } from '../core/volume-options.js';
import { isLogLevel } from '../core/log.js';
import type { Level } from 'pino';

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
  snapshotOnUnmount: boolean;
  /** Snapshots kept per relocatable volume after a move or an unmount snapshot. */
  snapshotRetain: number;
  sharedDelete: boolean;
}

type Env = Record<string, string | undefined>;

const CLUSTER = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const DURATION = /^([0-9]{1,6})(ms|s|m)?$/;
const REGION = /^[a-z]{2}(-[a-z]+)+-[0-9]+$/;
const ZONE = /^[a-z]{2}(-[a-z]+)+-[0-9]+[a-z]$/;
const INSTANCE = /^i-[0-9a-f]{8,17}$/;
const EFS_ID = /^fs-[0-9a-f]{8,40}$/;

function fail(variable: string, value: string | undefined, expected: string): never {
  throw new ConfigError(`${variable}=${JSON.stringify(value ?? '')} is not valid: expected ${expected}`);
}

function choice<T extends string>(env: Env, variable: string, allowed: readonly T[], fallback: T): T {
  const value = env[variable];
  if (value === undefined || value === '') return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  return fail(variable, value, `one of ${allowed.join(', ')}`);
}

function flag(env: Env, variable: string, fallback: boolean): boolean {
  return choice(env, variable, ['true', 'false'], fallback ? 'true' : 'false') === 'true';
}

/** Seconds by default; `ms`, `s` and `m` suffixes accepted. */
function duration(env: Env, variable: string, fallbackMs: number, minMs: number, maxMs: number): number {
  const value = env[variable];
  if (value === undefined || value === '') return fallbackMs;
  const m = DURATION.exec(value);
  if (!m) return fail(variable, value, 'a duration such as 100, 100s, 90000ms or 2m');
  const unit = m[2] ?? 's';
  const ms = Number(m[1]) * (unit === 'ms' ? 1 : unit === 's' ? 1000 : 60000);
  if (ms < minMs || ms > maxMs) return fail(variable, value, `between ${minMs / 1000}s and ${maxMs / 1000}s`);
  return ms;
}

function count(env: Env, variable: string, fallback: number, max: number): number {
  const value = env[variable];
  if (value === undefined || value === '') return fallback;
  if (!/^[0-9]{1,4}$/.test(value) || Number(value) > max) return fail(variable, value, `a whole number from 0 to ${max}`);
  return Number(value);
}

function absolutePath(env: Env, variable: string, fallback: string): string {
  const value = env[variable];
  if (value === undefined || value === '') return fallback;
  if (!path.isAbsolute(value) || value.split('/').includes('..')) return fail(variable, value, 'an absolute path without ..');
  return path.normalize(value);
}

function optionalMatching(env: Env, variable: string, pattern: RegExp, expected: string): string | undefined {
  const value = env[variable];
  if (value === undefined || value === '') return undefined;
  if (!pattern.test(value)) return fail(variable, value, expected);
  return value;
}

function url(env: Env, variable: string): string | undefined {
  const value = env[variable];
  if (value === undefined || value === '') return undefined;
  try {
    const parsed = new URL(value);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('scheme');
  } catch {
    return fail(variable, value, 'an http:// or https:// URL');
  }
  return value.replace(/\/+$/, '');
}

function listenAddress(env: Env, variable: string): { host: string; port: number } | undefined {
  const value = env[variable];
  if (value === undefined || value === '') return undefined;
  const m = /^(.*):([0-9]{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) return fail(variable, value, 'host:port, such as 127.0.0.1:9337 or :9337');
  return { host: m[1] === '' ? '0.0.0.0' : m[1]!, port };
}

/** Reads and checks every setting; the first bad one stops the start with a ConfigError naming it. */
export function loadConfig(env: Env = process.env, defaults: { backend?: 'aws' | 'local' } = {}): Config {
  const backend = choice(env, 'STOWAGE_BACKEND', ['aws', 'local'], defaults.backend ?? 'aws');
  const instanceId = optionalMatching(env, 'STOWAGE_INSTANCE_ID', INSTANCE, 'an EC2 instance id such as i-0123456789abcdef0');
  const az = optionalMatching(env, 'STOWAGE_AZ', ZONE, 'an availability zone such as us-east-1a');
  if ((instanceId === undefined) !== (az === undefined)) {
    fail(instanceId === undefined ? 'STOWAGE_INSTANCE_ID' : 'STOWAGE_AZ', undefined, 'STOWAGE_INSTANCE_ID and STOWAGE_AZ are set together or not at all');
  }
  const localcloudUrl = url(env, 'STOWAGE_LOCALCLOUD_URL');
  const localcloudDir = env.STOWAGE_LOCALCLOUD_DIR ? absolutePath(env, 'STOWAGE_LOCALCLOUD_DIR', '') : undefined;
  if (localcloudUrl !== undefined && localcloudDir === undefined) {
    fail('STOWAGE_LOCALCLOUD_DIR', undefined, 'the folder of the localcloud at STOWAGE_LOCALCLOUD_URL');
  }
  const logLevel = env.STOWAGE_LOG_LEVEL || 'info';
  if (!isLogLevel(logLevel)) fail('STOWAGE_LOG_LEVEL', logLevel, 'one of fatal, error, warn, info, debug, trace');
  const cluster = env.STOWAGE_CLUSTER || 'default';
  if (!CLUSTER.test(cluster)) fail('STOWAGE_CLUSTER', cluster, 'letters, digits, _ . - (at most 63), starting with a letter or digit');

  return {
    backend,
    region: optionalMatching(env, 'AWS_REGION', REGION, 'an AWS region such as us-east-1'),
    endpointUrl: url(env, 'AWS_ENDPOINT_URL'),
    cluster,
    defaultBacking: choice(env, 'STOWAGE_DEFAULT_BACKING', BACKINGS, 'shared'),
    efsId: optionalMatching(env, 'STOWAGE_EFS_ID', EFS_ID, 'an EFS file system id such as fs-0123456789abcdef0'),
    efsMaxioId: optionalMatching(env, 'STOWAGE_EFS_MAXIO_ID', EFS_ID, 'an EFS file system id such as fs-0123456789abcdef0'),
    efsMode: choice(env, 'STOWAGE_EFS_MODE', ['directory', 'accesspoint'], 'directory'),
    socket: absolutePath(env, 'STOWAGE_SOCKET', '/run/docker/plugins/stowage.sock'),
    mountRoot: absolutePath(env, 'STOWAGE_MOUNT_ROOT', '/mnt/stowage'),
    stateDir: absolutePath(env, 'STOWAGE_STATE_DIR', '/var/lib/stowage'),
    // dockerd gives Mount 120 s; leave room for the answer to travel.
    mountTimeoutMs: duration(env, 'STOWAGE_MOUNT_TIMEOUT', 100_000, 1000, 115_000),
    deviceDir: absolutePath(env, 'STOWAGE_DEVICE_DIR', '/dev/disk/by-id'),
    instanceId,
    az,
    logLevel,
    metricsAddr: listenAddress(env, 'STOWAGE_METRICS_ADDR'),
    localcloudUrl,
    localcloudDir,
    fenceAfterMs: duration(env, 'STOWAGE_FENCE_AFTER', 120_000, 1000, 3_600_000),
    snapshotOnUnmount: flag(env, 'STOWAGE_SNAPSHOT_ON_UNMOUNT', true),
    snapshotRetain: count(env, 'STOWAGE_SNAPSHOT_RETAIN', 1, 1000),
    sharedDelete: flag(env, 'STOWAGE_SHARED_DELETE', false),
  };
}
