import { CreateTagsCommand, ModifyVolumeCommand, type EC2Client, type ModifyVolumeRequest, type VolumeType } from '@aws-sdk/client-ec2';
import { Ec2Code, hasCode } from '../../aws/errors.js';
import { describeModification, readModification, toModificationView, type ModificationView, type Send } from '../../aws/volume-progress.js';
import { checkEbsConfig, EBS_ONLY, type EbsConfig, type EbsConfigNames } from '../../core/ebs-config.js';
import { CloudError, UnsupportedError, VolumeBusyError } from '../../core/errors.js';
import { Tags } from '../../core/schema/tags.js';
import { EBS_LIMITS, EBS_TYPES, type EbsType } from '../../core/volume-options.js';
import type { ParsedArgs } from './args.js';
import type { OpsCommand } from './command.js';
import type { OpsContext } from './context.js';
import { ExitCode, UsageError } from './exit-codes.js';
import { locateVolume } from './locate.js';
import { printJson } from './output.js';
import { pause, progressLine } from './progress.js';

const USAGE = `Usage: stowage modify NAME [--size GiB] [--type T] [--iops N] [--throughput MiB/s] [--wait] [--region R] [--cluster C] [--endpoint [REGION=]URL ...] [--json]

Changes a relocatable volume in place (EBS Elastic Volumes), attached or not, within the limits
Create's options have (--type is the ebstype option). A volume only grows. EC2 takes one
modification at a time, and the next one not sooner than six hours after this one started.
Progress goes to stderr: modifying → optimizing → completed. The new size is usable from
optimizing on, which is where the command ends unless --wait waits for completed (optimizing can
take hours). A bigger filesystem follows by itself: the node holding the volume grows it online
within half a minute, or the next Mount does.

Examples:
  stowage modify db1 --size 200
  stowage modify db1 --type io2 --iops 8000 --wait --json
`;

const NAMES: EbsConfigNames = { size: '--size', ebstype: '--type', iops: '--iops', throughput: '--throughput', giveSize: 'give --size' };
const FLAGS = { size: 'size', type: 'ebstype', iops: 'iops', throughput: 'throughput' } as const;

function given(args: ParsedArgs): Partial<Record<'size' | 'ebstype' | 'iops' | 'throughput', string>> {
  const out: Partial<Record<'size' | 'ebstype' | 'iops' | 'throughput', string>> = {};
  for (const [flag, key] of Object.entries(FLAGS)) {
    const value = args.flags.get(flag);
    if (typeof value === 'string') out[key] = value;
  }
  if (Object.keys(out).length === 0) throw new UsageError('nothing to change: give --size, --type, --iops or --throughput');
  return out;
}

/** What the request changes: each value that differs, with IOPS and throughput restated for a new type. */
function request(current: EbsConfig, target: EbsConfig): Pick<ModifyVolumeRequest, 'Size' | 'VolumeType' | 'Iops' | 'Throughput'> {
  const typeChanged = target.ebstype !== current.ebstype;
  return {
    ...(target.size !== current.size && { Size: target.size }),
    ...(typeChanged && { VolumeType: target.ebstype as VolumeType }),
    ...(target.iops !== undefined && (typeChanged || target.iops !== current.iops) && { Iops: target.iops }),
    ...(target.throughput !== undefined && (typeChanged || target.throughput !== current.throughput) && { Throughput: target.throughput }),
  };
}

async function run(ctx: OpsContext, args: ParsedArgs): Promise<number> {
  const name = args.positionals[0]!;
  const asked = given(args);
  const { inventory, group } = await locateVolume(ctx, name);
  if (!group) throw new UnsupportedError(`volume ${name} is not relocatable: only EBS volumes can be modified (shared ones grow by themselves)`, { volume: name });
  const volume = group.current;
  const context = { volume: name, volumeId: volume.id, zone: volume.zone, region: inventory.region };
  if (!(EBS_TYPES as readonly string[]).includes(volume.type)) throw new UnsupportedError(`volume ${name} (${volume.id}) is of type ${volume.type}, which Stowage does not modify`, context);
  const type = volume.type as EbsType;
  const limits = EBS_LIMITS[type];
  const current: EbsConfig = {
    size: volume.size,
    ebstype: type,
    ...(limits.iops && volume.iops !== undefined && { iops: volume.iops }),
    ...(limits.throughput && volume.throughput !== undefined && { throughput: volume.throughput }),
  };
  // The operator's own command: EBS's limits bound it, not the cost limits set for docker users.
  const target = checkEbsConfig(asked, EBS_ONLY, current, NAMES);
  const changes = request(current, target);
  if (Object.keys(changes).length === 0) throw new UsageError(`volume ${name} already is ${target.size} GiB ${target.ebstype}${target.iops ? `, ${target.iops} IOPS` : ''}${target.throughput ? `, ${target.throughput} MiB/s` : ''}`);

  const { ec2 } = ctx.targets.find((t) => t.region === inventory.region)!;
  const send: Send = (operation, call) => ctx.aws(operation, call, context);
  const previous = await readModification(ec2, volume.id, send);
  if (previous && previous.state !== 'completed' && previous.state !== 'failed') {
    throw new VolumeBusyError(`volume ${name} (${volume.id}) is being modified already (${describeModification(previous)}); EC2 takes the next modification once it completes${nextText(previous)}`, context, false);
  }
  let started: ModificationView;
  try {
    const out = await send('ModifyVolume', () => ec2.send(new ModifyVolumeCommand({ VolumeId: volume.id, ...changes })));
    started = toModificationView(out.VolumeModification ?? {});
  } catch (err) {
    if (hasCode(err, Ec2Code.ModificationRateExceeded, Ec2Code.IncorrectModificationState)) {
      throw new VolumeBusyError(`volume ${name} (${volume.id}) cannot be modified yet${previous ? `: its last modification started ${previous.startTime?.toISOString()}${nextText(previous)}` : ''} (EC2: ${err.message})`, context, false);
    }
    throw err;
  }
  ctx.log.info({ ...context, changes }, 'modification started');
  // Status asks EC2 for the progress only of volumes modified lately: this says so.
  await send('CreateTags', () => ec2.send(new CreateTagsCommand({ Resources: [volume.id], Tags: [{ Key: Tags.modifiedAt, Value: (started.startTime ?? new Date()).toISOString() }] })))
    .catch((err: unknown) => ctx.log.warn({ ...context, err }, 'could not tag the volume as modified; Status will not show the progress'));

  const final = await follow(ctx, ec2, name, volume.id, send, args.flags.has('wait') ? 'completed' : 'optimizing', started);
  if (final.state === 'failed') throw new CloudError(`the modification of volume ${name} (${volume.id}) failed: ${final.statusMessage ?? 'EC2 gave no reason'}`, 'ModificationFailed', context);
  const grows = target.size > current.size;
  const where = volume.attachment ? `the node holding it (${volume.attachment.instanceId}) grows the filesystem online` : 'its next Mount grows the filesystem';
  if (ctx.json) {
    printJson(ctx, { name, region: inventory.region, volumeId: volume.id, modification: final, nextAllowedAt: final.nextAllowedAt, filesystemGrows: grows ? (volume.attachment ? 'online' : 'at next mount') : 'no' });
  } else {
    ctx.io.stdout.write(`${name} (${volume.id}): ${describeModification(final)}\n`);
    if (grows) ctx.io.stdout.write(`The new size is usable; ${where}.\n`);
    ctx.io.stdout.write(`Next modification of ${name}: once this one completes${nextText(final)}.\n`);
  }
  return ctx.io.signal.aborted ? ExitCode.interrupted : ExitCode.ok;
}

function nextText(m: ModificationView): string {
  return m.nextAllowedAt ? ` and not before ${m.nextAllowedAt.toISOString()} (six hours after the last one started)` : '';
}

const ORDER = ['modifying', 'optimizing', 'completed'];

/** Polls with backoff, drawing the stage and progress on stderr, until `until` (or failed, or Ctrl-C). */
async function follow(ctx: OpsContext, ec2: EC2Client, name: string, volumeId: string, send: Send, until: 'optimizing' | 'completed', started: ModificationView): Promise<ModificationView> {
  const bar = progressLine(ctx.io.stderr);
  let seen = started;
  for (let wait = 500; ; wait = Math.min(wait * 1.6, 15_000)) {
    bar.show(`${name} ${seen.state}`, seen.progress);
    if (seen.state === 'failed' || ORDER.indexOf(seen.state) >= ORDER.indexOf(until)) break;
    if (ctx.io.signal.aborted) {
      bar.done();
      ctx.io.stderr.write(`stowage modify: stopped watching; EC2 carries on with the modification of ${name} (stowage inspect ${name} shows it).\n`);
      return seen;
    }
    await pause(wait, ctx.io.signal);
    seen = (await readModification(ec2, volumeId, send)) ?? seen;
  }
  bar.done();
  return seen;
}

export const modifyCommand: OpsCommand = {
  name: 'modify', usage: USAGE, flags: { size: 'value', type: 'value', iops: 'value', throughput: 'value', wait: 'switch' }, positionals: 1, run,
};
