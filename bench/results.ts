import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** bench/results.json in the source tree, whether run from bench/ or dist/bench/. */
const RESULTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), fileURLToPath(import.meta.url).includes('/dist/') ? '../../bench/results.json' : 'results.json');

/** Merges one bench's figures under its own key, so benches can run alone or together. */
export async function recordResults(key: string, figures: Record<string, unknown>): Promise<void> {
  let all: Record<string, unknown> = {};
  try {
    all = JSON.parse(await readFile(RESULTS, 'utf8')) as Record<string, unknown>;
  } catch {
    // first bench of this checkout
  }
  all[key] = { ...figures, measuredAt: new Date().toISOString(), node: process.version };
  await writeFile(RESULTS, JSON.stringify(all, null, 2) + '\n');
}

export function printTable(title: string, rows: Array<[string, string | number, string?]>): void {
  const width = Math.max(...rows.map(([label]) => label.length));
  process.stdout.write(`\n${title}\n${'-'.repeat(title.length)}\n`);
  for (const [label, value, target] of rows) {
    process.stdout.write(`${label.padEnd(width)}  ${String(value).padStart(10)}${target ? `   (${target})` : ''}\n`);
  }
}

/** Runs a bench's main() when its file is executed directly. */
export function runIfMain(url: string, main: () => Promise<void>): void {
  if (process.argv[1] && fileURLToPath(url) === path.resolve(process.argv[1])) {
    main().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
        process.exit(1);
      },
    );
  }
}
