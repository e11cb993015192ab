// Runs every bench compiled into dist/bench (each prints its table and merges bench/results.json).
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/bench');
const only = process.argv.slice(2);
for (const file of readdirSync(dir).filter((f) => f.endsWith('.js')).sort()) {
  const name = file.replace(/\.js$/, '');
  if (only.length > 0 && !only.includes(name)) continue;
  const mod = await import(pathToFileURL(path.join(dir, file)).href);
  if (typeof mod.main !== 'function') continue;
  process.stdout.write(`\n== ${name}\n`);
  await mod.main();
}
