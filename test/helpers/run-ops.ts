import { Writable } from 'node:stream';
import { runOpsCommand, type OpsCommand } from '../../cli/ops/command.js';

/** An operator command run in-process, as `stowage <command>` would, with its output captured. */
export async function runOps(command: OpsCommand, argv: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (s: string) => void) => new Writable({ write: (chunk, _enc, done) => (append(chunk.toString()), done()) });
  const code = await runOpsCommand(command, argv, {
    stdout: sink((s) => (stdout += s)),
    stderr: sink((s) => (stderr += s)),
    env,
    signal: new AbortController().signal,
  });
  return { code, stdout, stderr };
}
