import { UsageError } from './exit-codes.js';

/** The flags every operator command takes (docs/operations.md). */
export interface CommonFlags {
  regions: string[];
  allRegions: boolean;
  cluster: string;
  /** `--endpoint URL` (every region) and `--endpoint REGION=URL` (one region each). */
  endpoint: string | undefined;
  endpointByRegion: Map<string, string>;
  json: boolean;
  help: boolean;
}

export interface ParsedArgs {
  common: CommonFlags;
  positionals: string[];
  /** The command's own flags: value flags hold their value, switches hold true. */
  flags: Map<string, string | true>;
}

/** A command's own flags: `value` takes an argument, `switch` does not. */
export type FlagSpec = Record<string, 'value' | 'switch'>;

const REGION = /^[a-z]{2}(-[a-z]+)+-[0-9]+$/;
const CLUSTER = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

function checkUrl(value: string, flag: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`${flag} ${JSON.stringify(value)} is not a URL (expected http://host:port or REGION=http://host:port)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`${flag} ${JSON.stringify(value)} must be http:// or https://`);
  return value.replace(/\/+$/, '');
}

export function checkRegion(value: string): string {
  if (!REGION.test(value)) throw new UsageError(`region ${JSON.stringify(value)} is not an AWS region name such as us-east-1`);
  return value;
}

/** Parses argv; `--flag=value` and `--flag value` both work. Throws UsageError naming what is wrong. */
export function parseArgs(argv: string[], spec: FlagSpec, env: Record<string, string | undefined>): ParsedArgs {
  const common: CommonFlags = {
    regions: [],
    allRegions: false,
    cluster: env.STOWAGE_CLUSTER || 'default',
    endpoint: undefined,
    endpointByRegion: new Map(),
    json: false,
    help: false,
  };
  const positionals: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--') && arg !== '-h') {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg === '-h' ? 'help' : arg.slice(2, eq === -1 ? undefined : eq);
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);
    const takesValue = ['region', 'cluster', 'endpoint'].includes(name) || spec[name] === 'value';
    const isSwitch = ['all-regions', 'json', 'help'].includes(name) || spec[name] === 'switch';
    if (!takesValue && !isSwitch) throw new UsageError(`unknown flag --${name}`);
    if (isSwitch) {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      if (name === 'all-regions') common.allRegions = true;
      else if (name === 'json') common.json = true;
      else if (name === 'help') common.help = true;
      else flags.set(name, true);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined || value === '') throw new UsageError(`--${name} needs a value`);
    if (name === 'region') common.regions.push(checkRegion(value));
    else if (name === 'cluster') {
      if (!CLUSTER.test(value)) throw new UsageError(`--cluster ${JSON.stringify(value)}: letters, digits, _ . - (at most 63), starting with a letter or digit`);
      common.cluster = value;
    } else if (name === 'endpoint') {
      const m = /^([a-z0-9-]+)=(.+)$/.exec(value);
      if (m) common.endpointByRegion.set(checkRegion(m[1]!), checkUrl(m[2]!, '--endpoint'));
      else common.endpoint = checkUrl(value, '--endpoint');
    } else flags.set(name, value);
  }
  if (common.allRegions && common.regions.length > 0) throw new UsageError('--all-regions and --region exclude each other');
  return { common, positionals, flags };
}
