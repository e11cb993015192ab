#!/usr/bin/env node
/**
 * `npm run chaos -- --seed S --steps N [--lag MS] [--shrink-minutes M] [--verbose]`: runs test/chaos/chaos.test.ts
 * under jest (the repo runs TypeScript through ts-jest, so no second TypeScript loader is needed),
 * passing the settings as CHAOS_* variables; exits with jest's code, non-zero on a violation.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const FLAGS = { '--seed': 'CHAOS_SEED', '--steps': 'CHAOS_STEPS', '--lag': 'CHAOS_LAG_MS', '--shrink-minutes': 'CHAOS_SHRINK_MS' };
const USAGE = 'usage: npm run chaos -- --seed S --steps N [--lag MS] [--shrink-minutes M] [--verbose]\n';

const env = { ...process.env };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--verbose') {
    env.CHAOS_VERBOSE = '1';
    continue;
  }
  const [flag, inline] = argv[i].split('=', 2);
  const value = inline ?? argv[++i];
  if (!(flag in FLAGS) || value === undefined || !/^\d+$/.test(value)) {
    process.stderr.write(`chaos: ${flag in FLAGS ? `${flag} needs a whole number` : `unknown argument ${argv[i]}`}\n${USAGE}`);
    process.exit(2);
  }
  env[FLAGS[flag]] = flag === '--shrink-minutes' ? String(Number(value) * 60_000) : value;
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const jest = spawnSync(process.execPath, [
  '--disable-warning=ExperimentalWarning', '--experimental-vm-modules', path.join(root, 'node_modules/jest/bin/jest.js'),
  '--runInBand', path.join(root, 'test/chaos/chaos.test.ts'),
], { cwd: root, env, stdio: 'inherit' });
process.exit(jest.status ?? 1);
