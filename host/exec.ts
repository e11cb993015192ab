import { execFile, type ExecFileException } from 'node:child_process';
import { HostError } from '../core/errors.js';

export interface ExecOptions {
  /** The command is killed and the call fails after this long. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Exit codes that are answers rather than failures (blkid: 2 = nothing found). */
  okCodes?: readonly number[];
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** How the host layer runs commands; tests inject a fake that records the argv. */
export type ExecRunner = (file: string, args: readonly string[], options?: ExecOptions) => Promise<ExecResult>;

/**
 * A command that failed. Its fields stay out of `context` so that describeError does not repeat
 * what the message already says.
 */
export class CommandError extends HostError {
  constructor(
    message: string,
    readonly command: string,
    readonly exitCode: number | undefined,
    /** Trimmed stderr, or stdout for the tools (mkfs.xfs, e2fsck) that complain there. */
    readonly stderr: string,
    readonly timedOut = false,
  ) {
    super(message);
  }
}

export const DEFAULT_TIMEOUT_MS = 120_000;
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

export const runCommand: ExecRunner = (file, args, options = {}) => {
  const { timeoutMs = DEFAULT_TIMEOUT_MS, signal, okCodes = [0] } = options;
  const command = [file, ...args].join(' ');
  return new Promise<ExecResult>((resolve, reject) => {
    if (signal?.aborted) {
      reject(new CommandError(`${command}: aborted before start`, command, undefined, '', true));
      return;
    }
    let settled = false;
    const settle = (done: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      done();
    };
    const child = execFile(
      file,
      [...args],
      // C locale: the messages we match ("target is busy") must not be translated.
      { encoding: 'utf8', maxBuffer: MAX_OUTPUT_BYTES, env: { ...process.env, LC_ALL: 'C' } },
      (error: ExecFileException | null, stdout: string, stderr: string) => {
        settle(() => {
          if (!error) {
            resolve({ exitCode: 0, stdout, stderr });
            return;
          }
          const code = typeof error.code === 'number' ? error.code : undefined;
          if (code !== undefined && okCodes.includes(code)) {
            resolve({ exitCode: code, stdout, stderr });
            return;
          }
          reject(failure(command, file, error, code, stderr.trim() || stdout.trim()));
        });
      },
    );
    // A prompt (mkfs asking "Proceed anyway?") must read EOF and fail, not wait forever.
    child.stdin?.end();
    // Settling here rather than on exit: a process stuck in the kernel (umount of a dead NFS
    // server) ignores SIGKILL until the kernel lets go, and the caller must not wait for that.
    const stop = (why: string): void => {
      child.kill('SIGKILL');
      settle(() => reject(new CommandError(`${command}: ${why}`, command, undefined, '', true)));
    };
    const onAbort = (): void => stop('aborted, killed');
    const timer = setTimeout(() => stop(`no answer after ${timeoutMs} ms, killed`), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
};

function failure(
  command: string,
  file: string,
  error: ExecFileException,
  code: number | undefined,
  output: string,
): CommandError {
  if (error.code === 'ENOENT') return new CommandError(`${file}: command not found`, command, undefined, '');
  const how = code !== undefined ? `exit code ${code}` : error.signal ? `killed by ${error.signal}` : error.message;
  const said = output ? `: ${output}` : '';
  return new CommandError(`${command} failed (${how})${said}`, command, code, output);
}
