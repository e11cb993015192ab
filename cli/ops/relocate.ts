import { VolumeWaiter } from '../../aws/volume-waiter.js';
import { VolumeCatalog } from '../../drivers/ebs/volume-catalog.js';
import { UnsupportedError, VolumeBusyError } from '../../core/errors.js';
import { VolumeReads } from '../../aws/volume-reads.js';
import { SnapshotStore } from '../../snapshot/snapshot-store.js';
import { ZoneMover, describeMove, type MoveProgress } from '../../snapshot/zone-move.js';
import type { ParsedArgs } from './args.js';
import type { OpsCommand } from './command.js';
import type { OpsContext } from './context.js';
import { ExitCode, UsageError } from './exit-codes.js';
import { locateVolume } from './locate.js';
import { printJson } from './output.js';
import { progressLine } from './progress.js';

const ZONE = /^[a-z]{2}(-[a-z]+)+-[0-9]+[a-z]$/;
/** A move of a large volume is snapshot-bound: allow it this long before leaving it to resume. */
const DEFAULT_TIMEOUT_MIN = 60;
/** The CLI does not share EC2's pace with anyone: first check after 1 s, as DESIGN.md says. */
const POLL_INITIAL_MS = 1000;

const USAGE = `Usage: stowage relocate NAME --to-zone ZONE [--timeout MINUTES] [--region R] [--cluster C] [--endpoint [REGION=]URL ...] [--json]

Moves a detached relocatable volume to another availability zone ahead of time (a maintenance, a
drained node): snapshot (or reuse the one taken at its last unmount), create the copy in ZONE,
verify, retire the old volume. Progress goes to stderr. A mounted (attached) volume is refused:
stop its task first. Every step is recorded in tags, so Ctrl-C (or --timeout) leaves a move the
same command, or the next Mount in any zone, resumes.

Examples:
  stowage relocate db1 --to-zone us-east-1b --region us-east-1
  stowage relocate db1 --to-zone eu-west-1c --region eu-west-1 --json
`;

async function run(ctx: OpsContext, args: ParsedArgs): Promise<number> {
  const name = args.positionals[0]!;
  const zone = args.flags.get('to-zone');
  if (typeof zone !== 'string') throw new UsageError('--to-zone ZONE is required');
  if (!ZONE.test(zone)) throw new UsageError(`--to-zone ${JSON.stringify(zone)} is not an availability zone such as us-east-1b`);
  const timeout = String(args.flags.get('timeout') ?? DEFAULT_TIMEOUT_MIN);
  if (!/^[0-9]{1,4}$/.test(timeout) || Number(timeout) < 1) throw new UsageError(`--timeout ${JSON.stringify(timeout)}: whole minutes, at least 1`);

  const { inventory, group } = await locateVolume(ctx, name);
  if (!group) throw new UnsupportedError(`volume ${name} is not relocatable: shared volumes are reachable from every zone`, { volume: name });
  if (!zone.startsWith(inventory.region)) throw new UsageError(`zone ${zone} is not in region ${inventory.region}, where ${name} lives`);
  const source = group.current;
  if (source.attachment) {
    throw new VolumeBusyError(
      `volume ${name} is attached to instance ${source.attachment.instanceId} in ${source.zone} (${source.attachment.state}); stop the task that mounts it, then relocate`,
      { volume: name, volumeId: source.id, instance: source.attachment.instanceId, zone: source.zone },
      false,
    );
  }

  const target = ctx.targets.find((t) => t.region === inventory.region)!;
  const { ec2 } = target;
  const log = ctx.log.child({ volume: name, region: inventory.region });
  const catalog = new VolumeCatalog({ ec2, counter: ctx.counter, cluster: ctx.cluster, ttlMs: 0, now: Date.now });
  const reading = { ec2, counter: ctx.counter, cluster: ctx.cluster, pollInitialMs: POLL_INITIAL_MS };
  const mover = new ZoneMover({
    ec2,
    counter: ctx.counter,
    cluster: ctx.cluster,
    snapshots: new SnapshotStore(reading),
    reads: new VolumeReads(reading),
    waiter: new VolumeWaiter({ ec2, counter: ctx.counter, log, initialDelayMs: POLL_INITIAL_MS }),
    named: (n, deadline, l) => catalog.named(n, deadline, l),
    retain: Number(ctx.io.env.STOWAGE_SNAPSHOT_RETAIN ?? '1') || 1,
  });

  const bar = progressLine(ctx.io.stderr);
  let last: MoveProgress | undefined;
  const report = (p: MoveProgress): void => {
    last = p;
    bar.show(`${name} ${p.from} → ${p.to}: ${p.stage}`, p.stage === 'snapshot' ? (p.percent ?? 0) : 100);
  };
  const started = Date.now();
  const interrupted = new Promise<'interrupted'>((resolve) => {
    if (ctx.io.signal.aborted) resolve('interrupted');
    ctx.io.signal.addEventListener('abort', () => resolve('interrupted'), { once: true });
  });
  const outcome = await Promise.race([
    mover.move(name, zone, { deadline: started + Number(timeout) * 60_000, log }, report),
    interrupted,
  ]);
  bar.done();
  if (outcome === 'interrupted') {
    const where = last ? describeMove(last) : `volume ${name} was about to move to ${zone}`;
    ctx.io.stderr.write(`stowage relocate: interrupted; ${where}. Every step is in the volume's tags: run the same command again to resume.\n`);
    return ExitCode.interrupted;
  }
  log.info({ volumeId: outcome.id, zone: outcome.zone, from: source.zone, previousVolumeId: source.id, generation: outcome.generation, ms: Date.now() - started }, 'relocated');
  if (ctx.json) printJson(ctx, { name, region: inventory.region, from: source.zone, to: outcome.zone, volumeId: outcome.id, previousVolumeId: source.id, generation: outcome.generation });
  else ctx.io.stdout.write(`${name} relocated ${source.zone} → ${outcome.zone}: ${outcome.id} (generation ${outcome.generation}), was ${source.id}\n`);
  return ExitCode.ok;
}

export const relocateCommand: OpsCommand = {
  name: 'relocate', usage: USAGE, flags: { 'to-zone': 'value', timeout: 'value' }, positionals: 1, run,
};
