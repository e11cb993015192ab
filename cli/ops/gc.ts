import path from 'node:path';
import { DeleteSnapshotCommand, DeleteVolumeCommand, DescribeInstancesCommand, DetachVolumeCommand } from '@aws-sdk/client-ec2';
import { DeleteAccessPointCommand } from '@aws-sdk/client-efs';
import { isUnfinishedCopy } from '../../core/schema/ebs-volume.js';
import { Tags } from '../../core/schema/tags.js';
import { backupsToPrune, snapshotsToPrune } from '../../snapshot/retention.js';
import { DEFAULT_BACKUP_RETAIN } from '../../core/volume-options.js';
import { describeError } from '../../core/errors.js';
import type { ParsedArgs } from './args.js';
import type { OpsCommand } from './command.js';
import { inEveryRegion, type OpsContext, type RegionTarget } from './context.js';
import { ExitCode, UsageError } from './exit-codes.js';
import { groupVolumes, readRegion, type RegionInventory, type SnapshotRecord } from './inventory.js';
import { printJson, regionErrors, reportRegionFailures, table } from './output.js';
import { deleteRemovedShare, removedShares } from './removed-shares.js';

export type GcKind = 'delete-volume' | 'delete-snapshot' | 'delete-access-point' | 'detach' | 'delete-removed-data' | 'report-duplicate';

/** One thing Stowage left behind, what gc does about it, and why it is safe. */
export interface GcAction {
  kind: GcKind;
  region: string;
  name: string;
  id: string;
  /** For a detach: the instance the volume is attached to. */
  instance?: string;
  reason: string;
}

/**
 * What to clean in one region. Only the cluster's resources are read, so only they can be named;
 * nothing attached, creating or still pending is ever touched.
 */
export function planRegion(inv: RegionInventory, retain: number, goneInstances: Set<string>, copySources: ReadonlySet<string> = new Set()): GcAction[] {
  const actions: GcAction[] = [];
  const region = inv.region;
  for (const group of groupVolumes(inv.volumes)) {
    for (const v of group.others) {
      // A move's copy whose source still exists is work in progress, not a leftover.
      if (isUnfinishedCopy(v, inv.volumes)) continue;
      // Two live volumes of one generation: which holds the data is for a person to say (invariant 10).
      if (v.generation === group.current.generation) {
        actions.push({
          kind: 'report-duplicate', region, name: v.name, id: v.id,
          reason: `duplicate: ${group.current.id} (${group.current.zone}) and ${v.id} (${v.zone}) both carry the name at generation ${v.generation}; Get and Mount refuse it until one is removed (gc never chooses)`,
        });
        continue;
      }
      if (v.state !== 'available' || v.attachment) continue;
      actions.push({
        kind: 'delete-volume', region, name: v.name, id: v.id,
        reason: `superseded: ${group.current.id} (generation ${group.current.generation}, ${group.current.zone}) carries the name`,
      });
    }
  }
  for (const v of inv.volumes) {
    if (v.attachment && goneInstances.has(v.attachment.instanceId)) {
      actions.push({ kind: 'detach', region, name: v.name, id: v.id, instance: v.attachment.instanceId, reason: `instance ${v.attachment.instanceId} is terminated` });
    }
  }
  // A snapshot a volume's tags point at (restored from, or holding its current data), or that a DR
  // copy still being made reads from, is never garbage.
  const referenced = new Set([
    ...inv.volumes.flatMap((v) => [...Object.values(v.tags).filter((value) => value.startsWith('snap-')), ...(v.restoredFrom ? [v.restoredFrom] : [])]),
    ...copySources,
  ]);
  // The plugin's own retention policy, per name: operator snapshots are backups and never go.
  const byName = new Map<string, (SnapshotRecord & { reason: string | undefined })[]>();
  for (const s of inv.snapshots) byName.set(s.name, [...(byName.get(s.name) ?? []), { ...s, reason: s.tags[Tags.snapshotReason] }]);
  const current = new Map(groupVolumes(inv.volumes).map((g) => [g.name, g.current]));
  for (const [name, snapshots] of byName) {
    for (const s of snapshotsToPrune(snapshots, retain, referenced)) {
      actions.push({ kind: 'delete-snapshot', region, name, id: s.id, reason: `beyond retention: the ${retain} newest moving snapshot(s) of ${name} are kept (operator snapshots are never deleted)` });
    }
    // A removed volume's backups are kept as its backupretain default says: they may be all that is left.
    const keepBackups = current.get(name)?.backupRetain ?? DEFAULT_BACKUP_RETAIN;
    for (const s of backupsToPrune(snapshots, keepBackups, referenced)) {
      actions.push({ kind: 'delete-snapshot', region, name, id: s.id, reason: `beyond retention: the ${keepBackups} newest backups of ${name} are kept (backupretain)` });
    }
  }
  for (const s of inv.snapshots) {
    if (s.state === 'error' && !referenced.has(s.id)) actions.push({ kind: 'delete-snapshot', region, name: s.name, id: s.id, reason: 'failed snapshot (state error)' });
  }
  for (const ap of inv.accessPoints) {
    if (ap.state === 'error') actions.push({ kind: 'delete-access-point', region, name: ap.name, id: ap.id, reason: `access point on ${ap.fileSystemId} failed (state error)` });
  }
  return actions;
}

/** The attached instances that are terminated or no longer exist (one filtered, paginated call). */
async function goneInstances(ctx: OpsContext, t: RegionTarget, inv: RegionInventory): Promise<Set<string>> {
  const ids = [...new Set(inv.volumes.flatMap((v) => (v.attachment ? [v.attachment.instanceId] : [])))];
  if (ids.length === 0) return new Set();
  const alive = new Set<string>();
  let token: string | undefined;
  do {
    const page = await ctx.aws(
      'DescribeInstances',
      () => t.ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-id', Values: ids }], MaxResults: 1000, ...(token && { NextToken: token }) })),
      { region: t.region },
    );
    for (const i of page.Reservations?.flatMap((r) => r.Instances ?? []) ?? []) {
      if (i.InstanceId && i.State?.Name !== 'terminated') alive.add(i.InstanceId);
    }
    token = page.NextToken;
  } while (token);
  return new Set(ids.filter((id) => !alive.has(id)));
}

async function apply(ctx: OpsContext, t: RegionTarget, a: GcAction): Promise<void> {
  const context = { volume: a.name, region: a.region };
  const started = Date.now();
  let requestId: string | undefined;
  switch (a.kind) {
    case 'report-duplicate':
      return;
    case 'delete-volume':
      ({ $metadata: { requestId } } = await ctx.aws('DeleteVolume', () => t.ec2.send(new DeleteVolumeCommand({ VolumeId: a.id })), { ...context, volumeId: a.id }));
      break;
    case 'delete-snapshot':
      ({ $metadata: { requestId } } = await ctx.aws('DeleteSnapshot', () => t.ec2.send(new DeleteSnapshotCommand({ SnapshotId: a.id })), { ...context, snapshotId: a.id }));
      break;
    case 'delete-access-point':
      ({ $metadata: { requestId } } = await ctx.aws('DeleteAccessPoint', () => t.efs.send(new DeleteAccessPointCommand({ AccessPointId: a.id })), { ...context, accessPoint: a.id }));
      break;
    case 'detach':
      // The instance is gone: nothing on it can be writing, and a plain detach would wait for it.
      ({ $metadata: { requestId } } = await ctx.aws('DetachVolume', () => t.ec2.send(new DetachVolumeCommand({ VolumeId: a.id, InstanceId: a.instance, Force: true })), { ...context, volumeId: a.id, instance: a.instance }));
      break;
  }
  ctx.log.info({ ...context, id: a.id, instance: a.instance, action: a.kind, requestId, ms: Date.now() - started }, `gc: ${a.reason}`);
}

/** Kept data of removed shared volumes, planned like the AWS actions so one table shows all. */
async function planRemovedShares(ctx: OpsContext, args: ParsedArgs): Promise<{ actions: GcAction[]; apply: (a: GcAction) => Promise<void> }> {
  const root = args.flags.get('shared-root');
  if (root === undefined) return { actions: [], apply: async () => undefined };
  if (root === true || !path.isAbsolute(root)) throw new UsageError('--shared-root takes the absolute path where the share is mounted');
  const daysText = String(args.flags.get('removed-days') ?? ctx.io.env.STOWAGE_SHARED_KEEP_DAYS ?? '30');
  if (!/^[0-9]{1,5}$/.test(daysText)) throw new UsageError(`--removed-days (or STOWAGE_SHARED_KEEP_DAYS) ${JSON.stringify(daysText)}: a whole number of days`);
  const found = await removedShares(root, ctx.cluster, Number(daysText));
  const byPath = new Map(found.map((f) => [f.path, f]));
  return {
    actions: found.map((f) => ({
      kind: 'delete-removed-data' as const, region: 'share', name: f.entry, id: f.path,
      reason: `data of a removed shared volume, kept ${f.ageDays} day(s) (at least ${daysText})`,
    })),
    apply: async (a) => {
      await deleteRemovedShare(byPath.get(a.id)!);
      ctx.log.info({ volume: a.name, path: a.id, action: a.kind }, `gc: ${a.reason}`);
    },
  };
}

const USAGE = `Usage: stowage gc [--apply] [--retain N] [--shared-root PATH [--removed-days N]] [--region R ...|--all-regions] [--cluster C] [--endpoint [REGION=]URL ...] [--json]

Lists what Stowage left behind, and with --apply removes it: volumes superseded by a cross-zone
move (detached ones only), snapshots beyond retention (the newest N completed per volume are kept,
and any snapshot a volume's tags point at), scheduled backups beyond each volume's backupretain
(never operator snapshots, never the source of a DR copy still pending in a region read), failed
snapshots and access points, and attachments of
terminated instances. Dry run by default. Touches only resources with the cluster's tag.
--retain defaults to STOWAGE_SNAPSHOT_RETAIN, else 1. With --shared-root (where an EFS file system
or NFS export is mounted, e.g. /mnt/stowage/.shares/fs-…), also the data that Remove kept aside
for removed shared volumes, once removed longer than --removed-days ago (default
STOWAGE_SHARED_KEEP_DAYS, else 30), by the removal time recorded in each entry's name.

Examples:
  stowage gc --all-regions                 # what would go
  stowage gc --region us-east-1 --apply    # remove it
  stowage gc --apply --retain 3 --json
  stowage gc --shared-root /mnt/stowage/.shares/fs-0123456789abcdef0 --removed-days 30 --apply
`;

async function run(ctx: OpsContext, args: ParsedArgs): Promise<number> {
  const retainText = String(args.flags.get('retain') ?? ctx.io.env.STOWAGE_SNAPSHOT_RETAIN ?? '1');
  if (!/^[0-9]{1,4}$/.test(retainText)) throw new UsageError(`--retain ${JSON.stringify(retainText)}: a whole number of snapshots to keep per volume`);
  const retain = Number(retainText);
  const applying = args.flags.has('apply');
  const read = await inEveryRegion(ctx, (t) => readRegion(ctx, t));
  // A backup is the source of DR copies in other regions: one still being copied must stay.
  const copySources = new Set(
    read.flatMap((r) => (r.ok ? r.value.snapshots : []))
      .filter((s) => s.tags[Tags.snapshotReason] === 'dr-copy' && s.state === 'pending' && s.tags[Tags.sourceSnapshot])
      .map((s) => s.tags[Tags.sourceSnapshot]!),
  );
  const results = await inEveryRegion(ctx, async (t) => {
    const got = read.find((r) => r.region === t.region)!;
    if (!got.ok) throw got.error;
    const inv = got.value;
    const actions = planRegion(inv, retain, await goneInstances(ctx, t, inv), copySources);
    const failures: { action: GcAction; error: string }[] = [];
    if (applying) {
      // One at a time: gc is never in a hurry, and the mutating calls have the smallest EC2 budgets.
      for (const a of actions) {
        await apply(ctx, t, a).catch((err: unknown) => failures.push({ action: a, error: describeError(err) }));
      }
    }
    return { actions, failures };
  });
  const shares = await planRemovedShares(ctx, args);
  const failures = results.flatMap((r) => (r.ok ? r.value.failures : []));
  if (applying) {
    for (const a of shares.actions) await shares.apply(a).catch((err: unknown) => failures.push({ action: a, error: describeError(err) }));
  }
  const actions = [...results.flatMap((r) => (r.ok ? r.value.actions : [])), ...shares.actions];
  if (ctx.json) {
    printJson(ctx, { cluster: ctx.cluster, applied: applying, retain, actions, failures, errors: regionErrors(results) });
  } else {
    const done = (a: GcAction) => (!applying ? 'would' : failures.some((f) => f.action === a) ? 'FAILED' : 'done');
    ctx.io.stdout.write(
      actions.length === 0
        ? `nothing to clean in ${results.map((r) => r.region).join(', ')} (cluster ${ctx.cluster})\n`
        : table(['', 'ACTION', 'REGION', 'NAME', 'ID', 'WHY'], actions.map((a) => [done(a), a.kind, a.region, a.name, a.id, a.reason])),
    );
    if (!applying && actions.length > 0) ctx.io.stdout.write('dry run: nothing was changed; run again with --apply to remove these\n');
  }
  for (const f of failures) ctx.io.stderr.write(`stowage gc: ${f.action.kind} ${f.action.id} failed: ${f.error}\n`);
  const regions = reportRegionFailures(ctx, results);
  return failures.length > 0 ? ExitCode.failed : regions;
}

export const gcCommand: OpsCommand = { name: 'gc', usage: USAGE, flags: { apply: 'switch', retain: 'value', 'shared-root': 'value', 'removed-days': 'value' }, positionals: 0, run };
