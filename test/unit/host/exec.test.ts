import { HostError } from '../../../core/errors.js';
import { CommandError, runCommand } from '../../../host/exec.js';

describe('runCommand', () => {
  test('captures stdout and stderr of a successful command', async () => {
    const result = await runCommand('sh', ['-c', 'echo out; echo err >&2']);
    expect(result).toEqual({ exitCode: 0, stdout: 'out\n', stderr: 'err\n' });
  });

  test('passes arguments untouched, without a shell', async () => {
    const { stdout } = await runCommand('printf', ['%s|', 'a b', '$(id)', ';rm -rf /']);
    expect(stdout).toBe('a b|$(id)|;rm -rf /|');
  });

  test('a failure is a HostError with the command, exit code and trimmed stderr', async () => {
    const err = await runCommand('sh', ['-c', 'echo "  it broke  " >&2; exit 3']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostError);
    expect(err).toBeInstanceOf(CommandError);
    const failure = err as CommandError;
    expect(failure.command).toBe('sh -c echo "  it broke  " >&2; exit 3');
    expect(failure.exitCode).toBe(3);
    expect(failure.stderr).toBe('it broke');
    expect(failure.timedOut).toBe(false);
    expect(failure.message).toMatch(/failed \(exit code 3\): it broke$/);
  });

  test('exit codes listed as answers resolve', async () => {
    const result = await runCommand('sh', ['-c', 'exit 2'], { okCodes: [0, 2] });
    expect(result.exitCode).toBe(2);
  });

  test('a missing program says so', async () => {
    await expect(runCommand('stowage-no-such-program', [])).rejects.toThrow(/stowage-no-such-program: command not found/);
  });

  test('a command that outlives its timeout is killed and the call fails', async () => {
    const err = (await runCommand('sleep', ['30'], { timeoutMs: 100 }).catch((e: unknown) => e)) as CommandError;
    expect(err).toBeInstanceOf(CommandError);
    expect(err.timedOut).toBe(true);
    expect(err.message).toMatch(/no answer after 100 ms/);
  });

  test('an abort signal kills the command', async () => {
    const controller = new AbortController();
    const pending = runCommand('sleep', ['30'], { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await expect(pending).rejects.toMatchObject({ timedOut: true, message: expect.stringMatching(/aborted/) });
    await expect(runCommand('true', [], { signal: controller.signal })).rejects.toThrow(/aborted before start/);
  });

  test('stdin is closed, so a prompt cannot wait forever', async () => {
    const { stdout } = await runCommand('cat', [], { timeoutMs: 5_000 });
    expect(stdout).toBe('');
  });

  test('runs in the C locale, so matched messages are not translated', async () => {
    const { stdout } = await runCommand('sh', ['-c', 'echo "$LC_ALL"']);
    expect(stdout.trim()).toBe('C');
  });
});
