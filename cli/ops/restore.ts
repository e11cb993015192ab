import { VolumeWaiter } from '../../aws/volume-waiter.js';
import { DataSafetyError, UnsupportedError, VolumeConflictError } from '../../core/errors.js';
import { readRestorable } from '../../core/schema/restorable.js';
import { taggedOptionsOf, type EbsVolume } from '../../core/schema/ebs-volume.js';
import { checkName } from '../../plugin/volume-service.js';
import { VolumeReads } from '../../aws/volume-reads.js';
import { SnapshotStore } from '../../snapshot/snapshot-store.js';
import { VolumeRestorer, type VolumeTemplate } from '../../snapshot/volume-restore.js';
import type { ParsedArgs } from './args.js';
import type { OpsCommand } from './command.js';
import type { OpsContext, RegionTarget } from './context.js';
import { ExitCode, UsageError } from './exit-codes.js';
import { firstZone, groupVolumes, readRegion, type SnapshotRecord, type VolumeGroup } from './inventory.js';
import { locateVolume } from './locate.js';
import { restoreInDrRegion } from './dr-restore.js';
import { printJson } from './output.js';
import { progressLine } from './progress.js';

const USAGE = `Usage: stowage restore NAME --from SNAPSHOT [--as NEWNAME] [--zone Z] [--region R] [--cluster C] [--endpoint [REGION=]URL ...] [--json]
       stowage restore NAME --region DR [--zone Z] [--cluster C] [--endpoint [REGION=]URL ...] [--json]

Makes a relocatable volume from one of NAME's snapshots (a backup, an operator snapshot; see
stowage backups NAME). With --as, a new volume NEWNAME; the volume NAME is not touched. Without
--as, NAME itself is replaced, which only a detached volume may be: its data is first kept in a
snapshot (reason operator, only a person deletes it), then the new volume takes the name and the
old one is deleted. Every step is on record in tags: after a crash or Ctrl-C, run the same
command again and it resumes. --zone: where the volume is made (default: NAME's zone).

A NAME whose volume was removed (its backups stay) is made again under NAME (or --as), like the
volume the snapshot recorded: its type, IOPS, throughput and options (default zone: the region's
first).

Without --from (disaster recovery): makes NAME in the one region named by --region from the newest
completed DR copy of its backups there (stowage dr status), tagged so a Swarm in that region with
the same cluster mounts it by name; nothing of NAME's own region is needed (see cli/ops/dr-restore.ts).

Examples:
  stowage restore db1 --from snap-0123456789abcdef0 --as db1-yesterday
  stowage restore db1 --from snap-0123456789abcdef0 --zone us-east-1b --json
  stowage restore db1 --region us-west-2 --zone us-west-2b
`;

/** A restore can wait on a snapshot of the whole volume (the kept data): minutes, not seconds. */
const RESTORE_DEADLINE_MS = 60 * 60_000;
const ZONE = /^[a-z]{2}(-[a-z]+)+-[0-9]+[a-z]$/;
const SNAPSHOT_ID = /^snap-[0-9a-f]{8,17}$/;

/** What the volume is made like: NAME's current volume (its type, size, options). */
function templateOf(volume: EbsVolume): VolumeTemplate {
  return {
    size: volume.size, type: volume.type, iops: volume.iops, throughput: volume.throughput, encrypted: volume.encrypted,
    kmskeyid: volume.kmskeyid, options: taggedOptionsOf(volume), initRate: volume.initRate,
  };
}

/**
 * A removed volume's template, from what its backup recorded of it (core/schema/restorable.ts):
 * its type, IOPS and throughput, and its options. Encrypted with the snapshot's own key.
 */
function recordedTemplate(name: string, record: SnapshotRecord): VolumeTemplate {
  const restorable = readRestorable(new Map(Object.entries(record.tags)), record.volumeSize);
  const context = { volume: name, snapshotId: record.id };
  if (!restorable) {
    throw new UnsupportedError(`volume ${name} has no EBS volume left, and snapshot ${record.id} does not record its type and options (taken before Stowage recorded them); restore it with --as into a name that exists`, context);
  }
  const { config, values } = restorable;
  if (!config || values.problems.length > 0) throw new DataSafetyError(`snapshot ${record.id} of ${name} carries tags that break the option rules: ${values.problems.join('; ')}`, context);
  return {
    size: config.size, type: config.ebstype, iops: config.iops, throughput: config.throughput, encrypted: true, kmskeyid: undefined,
    options: { fs: values.fs, mountopts: values.mountopts, backup: values.backup, backupretain: values.backupRetain, drregion: values.drRegion, initrate: values.initRate, ...values.rootOwner },
    initRate: values.initRate,
  };
}

function flagValue(args: ParsedArgs, flag: string): string | undefined {
  const value = args.flags.get(flag);
  if (value === true) throw new UsageError(`--${flag} needs a value`);
  return value;
}

async function run(ctx: OpsContext, args: ParsedArgs): Promise<number> {
  const name = checkName(args.positionals[0]!);
  const from = flagValue(args, 'from');
  if (from === undefined) {
    if (args.flags.has('as')) throw new UsageError('--as needs --from SNAPSHOT; a restore from a DR copy keeps the name');
    const zone = flagValue(args, 'zone');
    if (zone !== undefined && !ZONE.test(zone)) throw new UsageError(`--zone ${JSON.stringify(zone)} is not an availability zone such as us-west-2a`);
    return restoreInDrRegion(ctx, name, zone);
  }
  if (!SNAPSHOT_ID.test(from)) throw new UsageError(`--from ${JSON.stringify(from)} is not a snapshot id such as snap-0123456789abcdef0`);
  const asName = flagValue(args, 'as');
  const zoneFlag = flagValue(args, 'zone');
  if (zoneFlag !== undefined && !ZONE.test(zoneFlag)) throw new UsageError(`--zone ${JSON.stringify(zoneFlag)} is not an availability zone such as us-east-1a`);

  // The snapshot and NAME's volume live in one region (a restore from a DR copy is dr-restore.ts).
  const { inventory, group } = await locateVolume(ctx, name);
  const target = ctx.targets.find((t) => t.region === inventory.region)!;
  const record = inventory.snapshots.find((s) => s.id === from);
  if (!record) throw new UsageError(`snapshot ${from} is not a snapshot of volume ${name} in cluster ${ctx.cluster} (${inventory.region}); stowage backups ${name} lists them`);
  if (record.state !== 'completed') throw new UsageError(`snapshot ${from} is ${record.state} (${record.progress}%); restore once it is completed`);
  const template = group ? templateOf(group.current) : recordedTemplate(name, record);
  const zone = zoneFlag ?? group?.current.zone ?? (await firstZone(ctx, target));

  const bar = progressLine(ctx.io.stderr);
  const reading = { ec2: target.ec2, counter: ctx.counter, cluster: ctx.cluster, pollInitialMs: 500 };
  const snapshots = new SnapshotStore(reading);
  const restorer = new VolumeRestorer({
    ec2: target.ec2, counter: ctx.counter, cluster: ctx.cluster, snapshots, reads: new VolumeReads(reading),
    waiter: new VolumeWaiter({ ec2: target.ec2, counter: ctx.counter, log: ctx.log, initialDelayMs: 500 }),
    onProgress: (label, percent) => bar.show(label, percent),
  });
  const step = { deadline: Date.now() + RESTORE_DEADLINE_MS, log: ctx.log.child({ volume: asName ?? name }), cancel: ctx.io.signal };
  const snapshot = (await snapshots.find(from, step))!;
  try {
    if (asName !== undefined || !group) {
      // A name whose volume was removed is made again under that name, or under --as.
      const newName = checkName(asName ?? name);
      const volume = await restoreAsNew(ctx, target, newName, group ? name : undefined, snapshot.id, () => restorer.asNew(newName, snapshot, template, zone, step));
      return report(ctx, { name: volume.name, region: target.region, zone: volume.zone, volumeId: volume.id, restoredFrom: from });
    }
    const done = alreadyRestored(group, from);
    if (done) return report(ctx, { name, region: target.region, zone: done.zone, volumeId: done.id, restoredFrom: from });
    // A run that crashed after making the replacement left it as an unfinished copy of the volume.
    const replacement = group.others.find((v) => v.movedFrom === group.current.id && v.restoredFrom === from);
    const current = replacement ? { ...group.current, movingTo: replacement } : group.current;
    const { volume, kept } = await restorer.replace(current, snapshot, template, zone, step);
    return report(ctx, { name, region: target.region, zone: volume.zone, volumeId: volume.id, restoredFrom: from, replaced: group.current.id, kept });
  } finally {
    bar.done();
  }
}

/**
 * A rerun finds the name already on a volume made from the snapshot: a replacement that committed,
 * or a removed name made again that nothing has attached since.
 */
function alreadyRestored(group: VolumeGroup, from: string): EbsVolume | undefined {
  const current = group.current;
  if (current.restoredFrom !== from || current.movingTo) return undefined;
  return current.movedFrom !== undefined || current.lastAttach === undefined ? current : undefined;
}

/**
 * NEWNAME must be free, unless an earlier run of this same restore made it (then that volume is the
 * answer). `liveName`: the name the snapshot's volume still carries (absent once it was removed).
 */
async function restoreAsNew(ctx: OpsContext, target: RegionTarget, newName: string, liveName: string | undefined, from: string, make: () => Promise<EbsVolume>): Promise<EbsVolume> {
  if (newName === liveName) throw new UsageError(`--as ${newName} is the volume's own name; leave --as out to replace it`);
  const existing = await readRegion(ctx, target, newName);
  const [group] = groupVolumes(existing.volumes);
  if (group && group.current.restoredFrom === from && group.current.generation === 1 && group.current.state === 'available') return group.current;
  if (group || existing.accessPoints.length > 0) {
    throw new VolumeConflictError(`volume ${newName} already exists in ${target.region}; pick another --as name`, { volume: newName });
  }
  return make();
}

function report(ctx: OpsContext, result: { name: string; region: string; zone: string; volumeId: string; restoredFrom: string; replaced?: string; kept?: string }): number {
  if (ctx.json) printJson(ctx, result);
  else {
    const replaced = result.replaced ? `; the replaced volume ${result.replaced} is kept in ${result.kept}` : '';
    ctx.io.stdout.write(`volume ${result.name} restored from ${result.restoredFrom}: ${result.volumeId} in ${result.zone} (${result.region})${replaced}\n`);
  }
  return ExitCode.ok;
}

export const restoreCommand: OpsCommand = { name: 'restore', usage: USAGE, flags: { from: 'value', as: 'value', zone: 'value' }, positionals: 1, run };
