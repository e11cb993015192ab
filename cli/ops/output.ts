import type { OpsContext, RegionResult } from './context.js';
import { ExitCode, type ExitCodeValue } from './exit-codes.js';
import { describeError } from '../../core/errors.js';

/** Columns padded to their widest cell; empty cells show as `-` so columns stay aligned for awk. */
export function table(headers: string[], rows: string[][]): string {
  const cells = [headers, ...rows.map((r) => r.map((c) => (c === '' ? '-' : c)))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

/** `3m`, `5h`, `2d`: how long ago, as an operator reads it. */
export function age(since: Date | undefined, now = Date.now()): string {
  if (!since) return '';
  const s = Math.max(0, Math.round((now - since.getTime()) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

export function printJson(ctx: OpsContext, value: unknown): void {
  ctx.io.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Tells the operator which regions failed and why; the exit code says whether any answered. */
export function reportRegionFailures(ctx: OpsContext, results: RegionResult<unknown>[]): ExitCodeValue {
  const failed = results.filter((r) => !r.ok);
  for (const f of failed) ctx.io.stderr.write(`stowage: region ${f.region}: ${describeError(f.error)}\n`);
  if (failed.length === 0) return ExitCode.ok;
  return failed.length === results.length ? ExitCode.failed : ExitCode.partial;
}

/** The regions' failures as JSON fields, so `--json` output is complete on its own. */
export function regionErrors(results: RegionResult<unknown>[]): { region: string; error: string }[] {
  return results.flatMap((r) => (r.ok ? [] : [{ region: r.region, error: describeError(r.error) }]));
}
