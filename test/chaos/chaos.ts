/**
 * The seeded chaos run: fast-check draws sequences of steps from the seed and runs each on a fresh
 * world until the step budget is spent; the first sequence that breaks an invariant is shrunk
 * (each candidate replayed on a fresh world) within a time budget, and the shortest failing trace
 * is reported. The seed fixes the steps; what the cloud's fault rates hit and the timing are live.
 */
import fc from 'fast-check';
import { cleanUp, commandArbitraries, freshModel, type Model } from './commands.js';
import { ChaosWorld, Violation } from './world.js';

export interface ChaosOptions {
  seed: number;
  steps: number;
  /** How far back a Describe may look (localcloud's eventual consistency). */
  lagMs: number;
  /** How long shrinking a failure may take. */
  shrinkMs: number;
  /** Prints every step as it starts and ends. */
  verbose?: boolean;
}

export interface Failure {
  invariant: string;
  violation: string;
  trace: string[];
}

interface Figures {
  stepsDone: number;
  sequences: number;
  faults: Record<string, number>;
  steps: Record<string, number>;
  /** EC2 answers the injected faults produced, as the drivers saw them. */
  injected: { throttled: number; serverErrors: number };
}

export interface ChaosReport extends Figures {
  options: ChaosOptions;
  /** The first failure as found, and the shortest trace shrinking reached (replaying this many sequences). */
  found?: Failure;
  shrinkSequences?: number;
  shortest?: Failure;
  /** Other violations met while shrinking, each with its trace. */
  others: Failure[];
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const world = await ChaosWorld.open(options.lagMs, options.seed);
  if (options.verbose) world.onStep = (line) => process.stdout.write(`${line}\n`);
  const budget = { left: options.steps };
  let sequences = 0;
  let found: Failure | undefined;
  let shortest: Failure | undefined;
  const others: Failure[] = [];
  let shrinkUntil = Infinity;
  const figuresNow = (): Figures => ({
    stepsDone: world.stepsDone,
    sequences,
    faults: { ...world.faultCounts },
    steps: Object.fromEntries([...world.stepKinds].sort()),
    injected: { throttled: world.bed.counter.count(undefined, 'throttled'), serverErrors: world.bed.counter.count(undefined, 'error') },
  });
  let figures: Figures | undefined;
  try {
    const property = fc.asyncProperty(fc.commands(commandArbitraries(), { maxCommands: options.steps, size: 'max' }), async (commands) => {
      if (found ? Date.now() > shrinkUntil : budget.left <= 0) return;
      // While shrinking, every candidate gets all its steps.
      const model: Model = freshModel(world.nodes.length, found ? { left: Infinity } : budget);
      sequences++;
      try {
        await fc.asyncModelRun(async () => {
          await world.reset();
          return { model, real: world };
        }, commands);
        world.trace.push(`${world.trace.length + 1}. clean up, then count what is left`);
        await cleanUp(model, world);
      } catch (err) {
        if (options.verbose) process.stdout.write(`sequence ${sequences} failed: ${String(err)}\n`);
        // An error that is no invariant (the harness itself) is reported and shrunk the same way.
        const failure = { invariant: err instanceof Violation ? err.invariant : 'the run itself', violation: err instanceof Violation ? err.message : `the run failed (not an invariant): ${String(err)}`, trace: [...world.trace] };
        // Shrinking keeps to the violation first found; others met on the way are reported, not chased.
        if (found && failure.invariant !== found.invariant) {
          if (!others.some((o) => o.invariant === failure.invariant)) others.push(failure);
          return;
        }
        if (!found) {
          found = failure;
          shrinkUntil = Date.now() + options.shrinkMs;
          // The run's figures stop here: shrinking replays steps, it does not add any.
          figures = figuresNow();
        }
        if (!shortest || failure.trace.length <= shortest.trace.length) shortest = failure;
        throw err;
      }
      if (options.verbose) process.stdout.write(`sequence ${sequences} passed\n`);
    });
    // Every sequence spends from one budget, so there are never more sequences than steps; the rest return at once.
    await fc.check(property, { seed: options.seed, numRuns: options.steps, endOnFailure: false });
  } finally {
    await world.close();
  }
  return {
    options,
    ...(figures ?? figuresNow()),
    ...(found && { found, shrinkSequences: sequences - figures!.sequences }),
    ...(shortest && { shortest }),
    others,
  };
}

export function formatReport(r: ChaosReport): string {
  const lines = [
    `chaos: seed ${r.options.seed}, ${r.stepsDone} steps done of ${r.options.steps} in ${r.sequences} sequence(s); 3 nodes (a1, a2 in us-east-1a; b1 in us-east-1b); localcloud eventual=${r.options.lagMs}`,
    `faults: ${Object.entries(r.faults).map(([kind, n]) => `${kind} ${n}`).join(', ')}; EC2 calls throttled ${r.injected.throttled}, failed (5xx or connection) ${r.injected.serverErrors}`,
    `steps: ${Object.entries(r.steps).map(([kind, n]) => `${kind} ${n}`).join(', ')}`,
    `violations: ${r.found ? 1 + r.others.length : 0}`,
  ];
  if (r.found && r.shortest) {
    lines.push(`  first found: ${r.found.violation} (after ${r.found.trace.length} steps)`);
    lines.push(`  shortest trace (${r.shortest.trace.length} steps, after ${r.shrinkSequences} sequences replayed to shrink): ${r.shortest.violation}`);
    lines.push(...r.shortest.trace.map((step) => `    ${step}`));
  }
  for (const other of r.others) {
    lines.push(`  also met while shrinking (${other.trace.length} steps): ${other.violation}`);
    lines.push(...other.trace.map((step) => `    ${step}`));
  }
  return lines.join('\n') + '\n';
}
