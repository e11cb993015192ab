import type { DrCopyRecord } from '../../core/schema/dr-copy-record.js';
import { drCopiesOf } from '../../snapshot/dr-copy.js';
import type { ParsedArgs } from './args.js';
import type { OpsCommand } from './command.js';
import { inEveryRegion, type OpsContext } from './context.js';
import { UsageError } from './exit-codes.js';
import { describeVolumes, groupVolumes } from './inventory.js';
import { age, printJson, regionErrors, reportRegionFailures, table } from './output.js';

const USAGE = `Usage: stowage dr status [--region R ...] [--cluster C] [--endpoint [REGION=]URL ...] [--json]

Per relocatable volume with a DR region (drregion, or STOWAGE_DR_REGION at its Create): the newest
completed copy of its backups in the DR region and how old its data is, the RPO if the volume's
region were lost now, and how many copies are still pending. Name the volumes' regions and their
DR regions with --region; with the volumes' region lost, the DR region alone still shows its copies.

Examples:
  stowage dr status --region us-east-1 --region us-west-2
  stowage dr status --region us-west-2 --json
`;

/** One volume's DR state, as `--json` prints it. */
export interface DrStatusRow {
  name: string;
  /** The volume's region (from the volume, or from its copies when that region did not answer). */
  region: string | undefined;
  drRegion: string;
  newestCopy: string | undefined;
  /** ISO 8601: the moment whose data the newest completed copy holds. */
  dataAsOf: string | undefined;
  /** Age of that data in seconds: what a restore in the DR region now would lose. */
  rpoSeconds: number | undefined;
  pendingCopies: number;
  /** Why the row is incomplete (the DR region was not asked, or failed). */
  note: string | undefined;
}

async function run(ctx: OpsContext, args: ParsedArgs): Promise<number> {
  if (args.positionals[0] !== 'status') throw new UsageError(`unknown dr subcommand ${JSON.stringify(args.positionals[0])}; expected status`);
  const results = await inEveryRegion(ctx, async (t) => {
    const aws: Parameters<typeof drCopiesOf>[3] = (operation, send, extra) => ctx.aws(operation, send, { region: t.region, ...extra });
    const [volumes, copies] = await Promise.all([describeVolumes(ctx, t), drCopiesOf(t.ec2, ctx.cluster, undefined, aws)]);
    return { volumes: groupVolumes(volumes).map((g) => g.current), copies };
  });
  const copiesIn = new Map(results.flatMap((r) => (r.ok ? [[r.region, r.value.copies] as const] : [])));
  const failed = new Set(results.filter((r) => !r.ok).map((r) => r.region));

  const rows = new Map<string, { name: string; region: string | undefined; drRegion: string }>();
  for (const r of results) {
    if (!r.ok) continue;
    for (const v of r.value.volumes) if (v.drRegion !== undefined) rows.set(`${v.name}\u0000${v.drRegion}`, { name: v.name, region: r.region, drRegion: v.drRegion });
    for (const c of r.value.copies) {
      const key = `${c.name}\u0000${r.region}`;
      if (!rows.has(key)) rows.set(key, { name: c.name, region: c.sourceRegion, drRegion: r.region });
    }
  }
  const now = Date.now();
  const status: DrStatusRow[] = [...rows.values()]
    .sort((a, b) => a.name.localeCompare(b.name) || a.drRegion.localeCompare(b.drRegion))
    .map((row) => {
      const copies: DrCopyRecord[] | undefined = copiesIn.get(row.drRegion)?.filter((c) => c.name === row.name);
      const newest = copies?.find((c) => c.state === 'completed');
      const note = copies
        ? newest
          ? undefined
          : 'no completed copy yet'
        : failed.has(row.drRegion)
          ? `${row.drRegion} did not answer`
          : `${row.drRegion} not asked: add --region ${row.drRegion}`;
      return {
        ...row,
        newestCopy: newest?.id,
        dataAsOf: newest ? new Date(newest.takenAt).toISOString() : undefined,
        rpoSeconds: newest ? Math.round((now - newest.takenAt) / 1000) : undefined,
        pendingCopies: copies?.filter((c) => c.state === 'pending').length ?? 0,
        note,
      };
    });

  if (ctx.json) printJson(ctx, { volumes: status, errors: regionErrors(results) });
  else
    ctx.io.stdout.write(
      table(
        ['NAME', 'REGION', 'DR-REGION', 'NEWEST-COPY', 'DATA-AS-OF', 'RPO', 'PENDING', 'NOTE'],
        status.map((s) => [
          s.name,
          s.region ?? '',
          s.drRegion,
          s.newestCopy ?? '',
          s.dataAsOf ?? '',
          s.dataAsOf ? age(new Date(s.dataAsOf), now) : '',
          String(s.pendingCopies),
          s.note ?? '',
        ]),
      ),
    );
  return reportRegionFailures(ctx, results);
}

export const drCommand: OpsCommand = { name: 'dr', usage: USAGE, flags: {}, positionals: 1, run };
