import { VolumeNotFoundError } from '../../core/errors.js';
import { Tags } from '../../core/schema/tags.js';
import { checkName } from '../../plugin/volume-service.js';
import { isMovingAid } from '../../snapshot/retention.js';
import type { ParsedArgs } from './args.js';
import type { OpsCommand } from './command.js';
import { inEveryRegion, type OpsContext } from './context.js';
import { groupVolumes, readRegion, type SnapshotRecord } from './inventory.js';
import { age, printJson, regionErrors, reportRegionFailures, table } from './output.js';

const USAGE = `Usage: stowage backups NAME [--region R ...|--all-regions] [--cluster C] [--endpoint [REGION=]URL ...] [--json]

Lists the backups of a relocatable volume in every region named: scheduled backups (--opt
backup), operator snapshots (stowage snapshot, and those stowage restore kept of a replaced
volume) and DR copies (--opt drregion), newest first, with region, time and state. The snapshots
the plugin takes only to move a volume are not listed. Restore one with stowage restore NAME --from.

Examples:
  stowage backups db1
  stowage backups db1 --region us-east-1 --region us-west-2 --json
`;

/** One backup as listed. */
export interface BackupEntry {
  snapshotId: string;
  kind: string;
  region: string;
  takenAt: string | undefined;
  state: string;
  progress: number;
  /** For a DR copy: the region and backup it was copied from. */
  copiedFrom: string | undefined;
}

function toEntry(s: SnapshotRecord): BackupEntry {
  const source = s.tags[Tags.sourceSnapshot];
  return {
    snapshotId: s.id,
    kind: s.tags[Tags.snapshotReason] ?? 'unknown',
    region: s.region,
    // A DR copy holds the data of its backup's moment, not of its own start.
    takenAt: s.tags[Tags.takenAt] ?? s.startedAt?.toISOString(),
    state: s.state,
    progress: s.progress,
    copiedFrom: source ? `${s.tags[Tags.sourceRegion] ?? '?'}/${source}` : undefined,
  };
}

async function run(ctx: OpsContext, args: ParsedArgs): Promise<number> {
  const name = checkName(args.positionals[0]!);
  const results = await inEveryRegion(ctx, (t) => readRegion(ctx, t, name));
  const found = results.flatMap((r) => (r.ok ? [r.value] : []));
  const entries = found
    .flatMap((inv) => inv.snapshots.filter((s) => !isMovingAid({ ...s, reason: s.tags[Tags.snapshotReason] })))
    .map(toEntry)
    .sort((a, b) => (b.takenAt ?? '').localeCompare(a.takenAt ?? '') || b.snapshotId.localeCompare(a.snapshotId));
  const volumes = found.flatMap((inv) => groupVolumes(inv.volumes));
  if (volumes.length === 0 && entries.length === 0 && results.every((r) => r.ok)) throw new VolumeNotFoundError(name, { cluster: ctx.cluster });
  // Copies live in the DR region: say so when it was not among those read.
  const drRegions = [...new Set(volumes.flatMap((g) => (g.current.drRegion ? [g.current.drRegion] : [])))];
  const unread = drRegions.filter((r) => !ctx.targets.some((t) => t.region === r));
  if (ctx.json) {
    printJson(ctx, { name, cluster: ctx.cluster, backups: entries, unreadDrRegions: unread, errors: regionErrors(results) });
  } else {
    ctx.io.stdout.write(
      entries.length === 0
        ? `no backups of ${name} in ${ctx.targets.map((t) => t.region).join(', ')}\n`
        : table(
            ['SNAPSHOT', 'KIND', 'REGION', 'TAKEN', 'AGE', 'STATE', 'COPIED FROM'],
            entries.map((e) => [
              e.snapshotId, e.kind, e.region, e.takenAt ?? '', age(e.takenAt ? new Date(e.takenAt) : undefined),
              e.state === 'pending' ? `pending ${e.progress}%` : e.state, e.copiedFrom ?? '',
            ]),
          ),
    );
    for (const r of unread) ctx.io.stderr.write(`stowage backups: ${name} is copied to ${r}, which was not read; add --region ${r} to list its DR copies\n`);
  }
  return reportRegionFailures(ctx, results);
}

export const backupsCommand: OpsCommand = { name: 'backups', usage: USAGE, flags: {}, positionals: 1, run };
