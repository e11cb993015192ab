import { adoptCommand } from './adopt.js';
import { backupsCommand } from './backups.js';
import { runOpsCommand, type OpsCommand } from './command.js';
import { drCommand } from './dr.js';
import { gcCommand } from './gc.js';
import { inspectCommand } from './inspect.js';
import { lsCommand } from './ls.js';
import { modifyCommand } from './modify.js';
import { relocateCommand } from './relocate.js';
import { restoreCommand } from './restore.js';
import { snapshotCommand } from './snapshot.js';

const OPS: OpsCommand[] = [lsCommand, inspectCommand, relocateCommand, snapshotCommand, gcCommand, adoptCommand, drCommand, backupsCommand, restoreCommand, modifyCommand];

/**
 * The operator commands as `stowage` subcommands. Ctrl-C aborts the command's signal, so a long
 * command stops at a safe point; a second Ctrl-C exits at once.
 */
export const opsCommands: Record<string, (argv: string[]) => Promise<number>> = Object.fromEntries(
  OPS.map((command) => [
    command.name,
    async (argv: string[]) => {
      const abort = new AbortController();
      const onSigint = () => (abort.signal.aborted ? process.exit(130) : abort.abort());
      process.on('SIGINT', onSigint);
      try {
        const code = await runOpsCommand(command, argv, { stdout: process.stdout, stderr: process.stderr, env: process.env, signal: abort.signal });
        // Work abandoned at Ctrl-C (AWS requests in flight) must not carry on: its state is in tags.
        if (abort.signal.aborted) process.exit(code);
        return code;
      } finally {
        process.off('SIGINT', onSigint);
      }
    },
  ]),
);
