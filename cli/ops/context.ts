import { DescribeRegionsCommand } from '@aws-sdk/client-ec2';
import { callAws } from '../../aws/call.js';
import { CallCounter } from '../../aws/call-counter.js';
import { createAwsClients, type AwsClients } from '../../aws/clients.js';
import type { ErrorContext } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { CommonFlags } from './args.js';
import { UsageError } from './exit-codes.js';
import { findEmbeddedEndpoint, tokenCredentials } from '../embedded-endpoint.js';

/** One region a command works on, with its own clients (and endpoint, for localcloud). */
export interface RegionTarget extends AwsClients {
  region: string;
}

/** Where a command writes: stdout for results, stderr for progress and errors. */
export interface OpsIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  env: Record<string, string | undefined>;
  /** Aborted by Ctrl-C: long commands stop at the next safe point. */
  signal: AbortSignal;
}

/** Everything a command needs: its targets, the cluster, and the one way it calls AWS. */
export interface OpsContext {
  io: OpsIo;
  cluster: string;
  json: boolean;
  targets: RegionTarget[];
  counter: CallCounter;
  log: Logger;
  /** callAws with this command's counter, log and deadline. */
  aws<T>(operation: string, send: () => Promise<T>, context?: ErrorContext): Promise<T>;
}

/** Reads may retry throttling this long; a command that waits longer (relocate) sets its own. */
export const OPS_DEADLINE_MS = 60_000;

function endpointFor(flags: CommonFlags, region: string): string | undefined {
  return flags.endpointByRegion.get(region) ?? flags.endpoint;
}

/**
 * The regions to work on: `--region` as given; `--all-regions` is every region that has an
 * `--endpoint REGION=URL`, or else every region the account has enabled (DescribeRegions); with
 * neither, the regions of the endpoints, or AWS_REGION.
 */
async function chooseRegions(flags: CommonFlags, env: OpsIo['env'], counter: CallCounter, log: Logger, credentials?: Credentials): Promise<string[]> {
  if (flags.regions.length > 0) return [...new Set(flags.regions)];
  const mapped = [...flags.endpointByRegion.keys()];
  if (mapped.length > 0) return mapped;
  const home = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (flags.allRegions) {
    const { ec2 } = createAwsClients({ region: home ?? 'us-east-1', endpointUrl: flags.endpoint, ...(credentials && { credentials }) });
    try {
      const out = await callAws(counter, 'DescribeRegions', () => ec2.send(new DescribeRegionsCommand({})), {
        deadline: Date.now() + OPS_DEADLINE_MS,
        log,
      });
      return (out.Regions ?? []).map((r) => r.RegionName ?? '').filter((r) => r !== '').sort();
    } finally {
      ec2.destroy();
    }
  }
  if (home) return [home];
  throw new UsageError('no region: pass --region REGION (repeatable), --all-regions, or set AWS_REGION');
}

type Credentials = ReturnType<typeof tokenCredentials>;

/**
 * With no endpoint named, a plugin on this machine that embeds a localcloud (npm start) is the
 * one to talk to: its URL, region and token are in STOWAGE_STATE_DIR.
 */
async function embeddedTarget(flags: CommonFlags, env: OpsIo['env'], log: Logger): Promise<{ flags: CommonFlags; env: OpsIo['env']; credentials?: Credentials }> {
  if (flags.endpoint !== undefined || flags.endpointByRegion.size > 0 || env.AWS_ENDPOINT_URL) return { flags, env };
  const embedded = await findEmbeddedEndpoint(env.STOWAGE_STATE_DIR || '/var/lib/stowage');
  if (!embedded) return { flags, env };
  log.info({ url: embedded.url }, 'using the localcloud embedded in the plugin on this machine');
  return {
    flags: { ...flags, endpoint: embedded.url },
    env: { ...env, AWS_REGION: env.AWS_REGION || embedded.region },
    credentials: tokenCredentials(embedded.token),
  };
}

export async function openContext(given: CommonFlags, io: OpsIo, log: Logger): Promise<OpsContext & { close(): void }> {
  const counter = new CallCounter();
  const { flags, env, credentials } = await embeddedTarget(given, io.env, log);
  const regions = await chooseRegions(flags, env, counter, log, credentials);
  const targets = regions.map((region) => ({
    region, ...createAwsClients({ region, endpointUrl: endpointFor(flags, region), ...(credentials && { credentials }) }),
  }));
  return {
    io,
    cluster: flags.cluster,
    json: flags.json,
    targets,
    counter,
    log,
    aws: (operation, send, context) => callAws(counter, operation, send, { deadline: Date.now() + OPS_DEADLINE_MS, log, ...(context && { context }) }),
    close: () => {
      for (const t of targets) {
        t.ec2.destroy();
        t.efs.destroy();
      }
    },
  };
}

/** What one region answered, or why it did not. */
export type RegionResult<T> = { region: string; ok: true; value: T } | { region: string; ok: false; error: unknown };

/** Runs `work` in every target region at once; one region's failure does not stop the others. */
export async function inEveryRegion<T>(ctx: OpsContext, work: (target: RegionTarget) => Promise<T>): Promise<RegionResult<T>[]> {
  const settled = await Promise.allSettled(ctx.targets.map((t) => work(t)));
  return settled.map((s, i) => {
    const region = ctx.targets[i]!.region;
    return s.status === 'fulfilled' ? { region, ok: true, value: s.value } : { region, ok: false, error: s.reason };
  });
}
