/**
 * The chaos run as part of npm test: a fixed seed and a short budget. `npm run chaos -- --seed S
 * --steps N` runs this same file with CHAOS_SEED, CHAOS_STEPS (and CHAOS_LAG_MS, CHAOS_SHRINK_MS,
 * CHAOS_VERBOSE).
 */
import { asRoot } from '../helpers/as-root.js';
import { formatReport, runChaos } from './chaos.js';

const options = {
  seed: Number(process.env.CHAOS_SEED ?? 15),
  steps: Number(process.env.CHAOS_STEPS ?? 40),
  lagMs: Number(process.env.CHAOS_LAG_MS ?? 1000),
  shrinkMs: Number(process.env.CHAOS_SHRINK_MS ?? 2 * 60_000),
  verbose: process.env.CHAOS_VERBOSE === '1',
};
/** Room for the slowest steps (a cross-zone move under faults takes tens of seconds) and for shrinking. */
const TIMEOUT_MS = options.steps * 30_000 + options.shrinkMs + 10 * 60_000;

asRoot('chaos: three nodes in two zones on an eventually consistent localcloud, with kills and faults', () => {
  test(`seed ${options.seed}, ${options.steps} steps: no invariant broken, nothing left behind`, async () => {
    const report = await runChaos(options);
    process.stdout.write(formatReport(report));
    if (report.found) throw new Error(formatReport(report));
  }, TIMEOUT_MS);
});
