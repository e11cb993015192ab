import { CreateTagsCommand } from '@aws-sdk/client-ec2';
import { VolumeWaiter } from '../../aws/volume-waiter.js';
import { DataSafetyError, describeError } from '../../core/errors.js';
import { toEbsVolume, volumeTags } from '../../core/schema/ebs-volume.js';
import { nameTag, Tags } from '../../core/schema/tags.js';
import { FILESYSTEMS, type Filesystem } from '../../core/volume-options.js';
import { checkName } from '../../plugin/volume-service.js';
import type { ParsedArgs } from './args.js';
import { checkAdoptable, checkNameFree, findVolume, tagOf, type Candidate } from './adopt-checks.js';
import { FOREIGN_PLUGINS, foreignCandidates, type ForeignPlugin } from './adopt-foreign.js';
import { chooseFsSource, findHere, type Here } from './adopt-node.js';
import { probeFilesystem } from './adopt-probe.js';
import type { OpsCommand } from './command.js';
import type { OpsContext } from './context.js';
import { ExitCode, UsageError, exitCodeOf } from './exit-codes.js';
import { printJson, table } from './output.js';

const USAGE = `Usage: stowage adopt VOLUME-ID --name NAME [--fs ext4|xfs] [--region R ...] [--cluster C] [--endpoint [REGION=]URL ...] [--json]
       stowage adopt --from cloudstor [--stack-id STACK] [--fs ext4|xfs] [...]
       stowage adopt --from rexray [--rexray-tag VALUE] [--fs ext4|xfs] [...]

Brings an EBS volume made outside Stowage (by Cloudstor, REX-Ray or by hand) into the cluster as the
relocatable volume NAME, without touching its data. Refused: a volume of another cluster, one
attached to an instance outside the cluster, and a NAME a live volume of the cluster already has.

Its filesystem is read with blkid when the command runs on a node in the volume's zone (the volume
is attached there for the read, never mounted, and detached again); elsewhere --fs must name it.
The volume is then tagged for the cluster (generation 1) and marked formatted: Stowage never
formats it. Tags are written with the operator's credentials (docs/iam-policy-adopt.json).

--from finds the volumes Cloudstor (tag CloudstorVolumeName; --stack-id narrows to the stack it was
installed with) or REX-Ray (tag rexraySet; --rexray-tag narrows to its value) made, and adopts each
under the name that plugin gave it. Stop and remove that plugin first (docs/operators.md).

Examples:
  stowage adopt vol-0123456789abcdef0 --name pgdata --region us-east-1
  stowage adopt vol-0123456789abcdef0 --name pgdata --fs xfs      # off a node: not read, taken from --fs
  stowage adopt --from cloudstor --stack-id prod-swarm --json
`;

const VOLUME_ID = /^vol-[0-9a-f]{8,17}$/;
/** Tagging is one call; a lagging Describe may take a moment to show it. */
const CONFIRM_MS = 60_000;

interface Adopted {
  volumeId: string;
  name: string;
  region: string;
  zone: string;
  fs: Filesystem;
  /** How the filesystem was learnt: read on a node, or taken from --fs (and why it was not read). */
  how: string;
  already: boolean;
}

function parseFs(value: string | true | undefined): Filesystem | undefined {
  if (value === undefined) return undefined;
  if (value === true || !(FILESYSTEMS as readonly string[]).includes(value)) throw new UsageError(`--fs ${JSON.stringify(value)}: expected ${FILESYSTEMS.join(' or ')}`);
  return value as Filesystem;
}

/** The volumes to adopt: the one named on the command line, or those another plugin tagged. */
async function candidatesOf(ctx: OpsContext, args: ParsedArgs): Promise<Candidate[]> {
  const from = args.flags.get('from');
  const stack = args.flags.get('stack-id');
  const rexrayTag = args.flags.get('rexray-tag');
  if (from !== undefined) {
    if (from === true || !(FOREIGN_PLUGINS as readonly string[]).includes(from)) throw new UsageError(`--from ${JSON.stringify(from)}: expected ${FOREIGN_PLUGINS.join(' or ')}`);
    if (args.positionals.length > 0 || args.flags.has('name')) throw new UsageError('--from adopts every volume that plugin tagged, under the names it gave them: no VOLUME-ID and no --name');
    if (from === 'cloudstor' ? rexrayTag !== undefined : stack !== undefined) throw new UsageError(from === 'cloudstor' ? '--rexray-tag goes with --from rexray' : '--stack-id goes with --from cloudstor');
    const scope = from === 'cloudstor' ? stack : rexrayTag;
    return foreignCandidates(ctx, from as ForeignPlugin, typeof scope === 'string' ? scope : undefined);
  }
  if (stack !== undefined || rexrayTag !== undefined) throw new UsageError('--stack-id and --rexray-tag go with --from');
  const id = args.positionals[0];
  if (id === undefined) throw new UsageError('expected a VOLUME-ID (vol-…), or --from cloudstor|rexray');
  if (!VOLUME_ID.test(id)) throw new UsageError(`${JSON.stringify(id)} is not an EBS volume id (vol- and 8 or 17 hex digits)`);
  const name = args.flags.get('name');
  if (typeof name !== 'string') throw new UsageError('--name NAME is required: the name services will know the volume by');
  return [{ ...(await findVolume(ctx, id)), name }];
}

/**
 * Checks, then claims (the cluster tag alone: the plugin ignores a volume without a name, and the
 * node policy then lets this node attach it to read it), reads the filesystem, and names it. A run
 * that stops after the claim is finished by running it again.
 */
async function adoptOne(ctx: OpsContext, c: Candidate, here: () => Promise<Here>, given: Filesystem | undefined): Promise<Adopted> {
  const id = c.volume.VolumeId!;
  const name = checkName(c.name);
  const summary = { volumeId: id, name, region: c.target.region, zone: c.volume.AvailabilityZone ?? '' };
  const standing = await checkAdoptable(ctx, c);
  if (standing === 'adopted') return { ...summary, fs: (tagOf(c.volume, Tags.fs) ?? 'ext4') as Filesystem, how: 'adopted before', already: true };
  const source = chooseFsSource(c.volume, c.target.region, await here(), given);
  const tag = (tags: { Key: string; Value: string }[]) =>
    ctx.aws('CreateTags', () => c.target.ec2.send(new CreateTagsCommand({ Resources: [id], Tags: tags })), summary);
  if (standing === 'fresh') await tag([{ Key: Tags.cluster, Value: ctx.cluster }]);
  let fs: Filesystem;
  let how: string;
  if ('probeOn' in source) {
    fs = await probeFilesystem(ctx, c.target, c.volume, source.probeOn);
    if (given !== undefined && given !== fs) throw new DataSafetyError(`--fs ${given}, but ${id} holds ${fs}; run again with --fs ${fs} or without --fs`, summary);
    how = `read with blkid on ${source.probeOn.instanceId}`;
  } else {
    fs = source.given;
    how = `from --fs, not read (${source.notProbed})`;
  }
  // Another adopt may have taken the name while this one read the device.
  await checkNameFree(ctx, name, id);
  const named = volumeTags(ctx.cluster, name, 1, { fs, mountopts: [] }).filter((t) => t.Key !== nameTag(ctx.cluster, name).Key);
  await tag([...named.map((t) => ({ Key: t.Key!, Value: t.Value ?? '' })), { Key: Tags.formatted, Value: 'true' }]);
  const waiter = new VolumeWaiter({ ec2: c.target.ec2, counter: ctx.counter, log: ctx.log, initialDelayMs: 200, maxDelayMs: 2000 });
  await waiter.waitFor(id, (v) => {
    const seen = v && toEbsVolume(v, ctx.cluster);
    return seen !== undefined && seen.name === name && seen.formatted;
  }, { deadline: Date.now() + CONFIRM_MS, what: `${id} tagged as ${name}`, log: ctx.log });
  ctx.log.info({ ...summary, fs, how }, 'volume adopted');
  return { ...summary, fs, how, already: false };
}

async function run(ctx: OpsContext, args: ParsedArgs): Promise<number> {
  const given = parseFs(args.flags.get('fs'));
  const candidates = await candidatesOf(ctx, args);
  let found: Promise<Here> | undefined;
  const here = () => (found ??= findHere(ctx.io.env, ctx.log));
  // One volume named on the command line: its failure is the command's (message and exit code).
  if (!args.flags.has('from')) {
    const done = await adoptOne(ctx, candidates[0]!, here, given);
    if (ctx.json) printJson(ctx, { adopted: [done], failed: [] });
    else ctx.io.stdout.write(done.already ? `${done.volumeId} is already volume ${done.name}\n` : `adopted ${done.volumeId} as ${done.name} (${done.fs}, ${done.how}; ${done.zone})\n`);
    return ExitCode.ok;
  }
  const adopted: Adopted[] = [];
  const failed: { volumeId: string; name: string; region: string; error: string; code: number }[] = [];
  for (const c of candidates) {
    try {
      adopted.push(await adoptOne(ctx, c, here, given));
    } catch (err) {
      failed.push({ volumeId: c.volume.VolumeId ?? '', name: c.name, region: c.target.region, error: describeError(err), code: exitCodeOf(err) });
    }
  }
  if (ctx.json) printJson(ctx, { adopted, failed: failed.map(({ code: _code, ...f }) => f) });
  else {
    const rows = [
      ...adopted.map((a) => [a.already ? 'already' : 'adopted', a.name, a.volumeId, a.region, a.zone, a.fs, a.how]),
      ...failed.map((f) => ['refused', f.name, f.volumeId, f.region, '', '', f.error]),
    ];
    ctx.io.stdout.write(rows.length > 0 ? table(['RESULT', 'NAME', 'VOLUME', 'REGION', 'ZONE', 'FS', 'HOW'], rows) : `no volumes tagged by ${String(args.flags.get('from'))} in ${ctx.targets.map((t) => t.region).join(', ')}\n`);
  }
  return failed.length === 0 ? ExitCode.ok : Math.max(...failed.map((f) => f.code));
}

export const adoptCommand: OpsCommand = {
  name: 'adopt',
  usage: USAGE,
  flags: { name: 'value', fs: 'value', from: 'value', 'stack-id': 'value', 'rexray-tag': 'value' },
  positionals: [0, 1],
  run,
};
