import { createLogger, isLogLevel } from '../../core/log.js';
import { describeError } from '../../core/errors.js';
import { parseArgs, type FlagSpec, type ParsedArgs } from './args.js';
import { openContext, type OpsContext, type OpsIo } from './context.js';
import { ExitCode, UsageError, exitCodeOf } from './exit-codes.js';

/** One operator command: its usage text, its own flags, and the work. */
export interface OpsCommand {
  name: string;
  usage: string;
  flags: FlagSpec;
  /** How many positional arguments it takes (the volume name): a count, or [fewest, most]. */
  positionals: number | readonly [number, number];
  run(ctx: OpsContext, args: ParsedArgs): Promise<number>;
}

const COMMON_HELP = `
Every command:
  --region R            a region to work in (repeatable); default AWS_REGION
  --all-regions         every region: those named by --endpoint REGION=URL, else DescribeRegions
  --cluster C           the cluster's tag value; default STOWAGE_CLUSTER, else "default"
  --endpoint URL        send every region's calls to URL (localcloud, a VPC endpoint)
  --endpoint R=URL      send region R's calls to URL (repeatable; names the regions when --region is absent)
  --json                machine-readable output on stdout
Exit codes: 0 ok, 1 failed, 2 usage, 3 not found, 4 refused, 5 some regions failed, 130 interrupted (resumable).
`;

/** Parses, opens the AWS clients, runs, and turns every failure into a message and an exit code. */
export async function runOpsCommand(command: OpsCommand, argv: string[], io: OpsIo): Promise<number> {
  let parsed: ParsedArgs;
  try {
    parsed = parseArgs(argv, command.flags, io.env);
    const [fewest, most] = typeof command.positionals === 'number' ? [command.positionals, command.positionals] : command.positionals;
    const given = parsed.positionals.length;
    if (!parsed.common.help && (given < fewest || given > most)) {
      throw new UsageError(most === 0 ? `unexpected argument ${JSON.stringify(parsed.positionals[0])}` : 'expected a volume name');
    }
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr.write(`stowage ${command.name}: ${err.message}\n\n${command.usage}`);
    return ExitCode.usage;
  }
  if (parsed.common.help) {
    io.stdout.write(command.usage + COMMON_HELP);
    return ExitCode.ok;
  }
  const level = io.env.STOWAGE_LOG_LEVEL ?? 'warn';
  // Logs go to stderr, so stdout stays the command's result (a table, or JSON for scripts).
  const log = createLogger(isLogLevel(level) ? level : 'warn', io.stderr).child({ command: command.name });
  let ctx: Awaited<ReturnType<typeof openContext>> | undefined;
  // The AWS waits (aws/delay) do not hold the process open, as suits a daemon; a command must live until it answers.
  const alive = setInterval(() => undefined, 60_000);
  try {
    ctx = await openContext(parsed.common, io, log);
    return await command.run(ctx, parsed);
  } catch (err) {
    const code = exitCodeOf(err);
    const prefix = `stowage ${command.name}: `;
    io.stderr.write(`${prefix}${err instanceof UsageError ? err.message : describeError(err)}\n${code === ExitCode.usage ? `\n${command.usage}` : ''}`);
    return code;
  } finally {
    clearInterval(alive);
    ctx?.close();
  }
}
