/**
 * Logs as a person at a terminal reads them (issue 18 item 6): the real bundle under a
 * pseudo-terminal (`script`) prints readable lines, and the line that says what to try; JSON
 * when STOWAGE_LOG_FORMAT=json, and when stdout is no terminal (dockerd's log, every other test).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { asRoot } from '../../helpers/as-root.js';
import { removeTree, scratchDir } from '../../helpers/owned-dir.js';
import { PLUGIN_MAIN } from '../../helpers/plugin-process.js';

const exec = promisify(execFile);

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** npm start on a pseudo-terminal for a few seconds, then SIGTERM; what the terminal showed. */
async function onTerminal(dir: string, extraEnv: Record<string, string> = {}): Promise<string> {
  const env = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', TERM: 'dumb',
    STOWAGE_STATE_DIR: path.join(dir, 'state'), STOWAGE_SOCKET: path.join(dir, 'stowage.sock'), STOWAGE_MOUNT_ROOT: path.join(dir, 'mnt'),
    STOWAGE_LOCALCLOUD_LISTEN: '127.0.0.1:0', ...extraEnv,
  };
  const command = `timeout --preserve-status -s TERM 5 ${quote(process.execPath)} ${quote(PLUGIN_MAIN)} plugin --dev`;
  const { stdout } = await exec('script', ['-qec', command, '/dev/null'], { env, timeout: 30_000 });
  await exec(process.execPath, [PLUGIN_MAIN, 'localcloud', '--dir', path.join(dir, 'state', 'localcloud'), '--clean'], { env });
  return stdout.replace(/\r\n/g, '\n');
}

asRoot('logs on a terminal', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await scratchDir('tty-log');
  });
  afterAll(async () => {
    if (dir) await removeTree(dir);
  });

  test('readable lines, ending with what to try, on a TTY', async () => {
    const shown = await onTerminal(path.join(dir, 'text'));
    expect(shown).not.toContain('{"level"');
    expect(shown).toMatch(/^\d\d:\d\d:\d\d INFO  development mode \(--dev\)/m);
    expect(shown).toMatch(/^\d\d:\d\d:\d\d INFO  plugin listening  socket=\S+stowage.sock backings=\["relocatable","shared","nfs"\] cluster=default$/m);
    expect(shown).toMatch(/^\d\d:\d\d:\d\d INFO  ready; try: docker volume create -d stowage --opt backing=relocatable --opt size=1 db/m);
    expect(shown).toMatch(/^\d\d:\d\d:\d\d INFO  stopped$/m);
  }, 60_000);

  test('JSON lines on a TTY when STOWAGE_LOG_FORMAT=json', async () => {
    const shown = await onTerminal(path.join(dir, 'json'), { STOWAGE_LOG_FORMAT: 'json' });
    const lines = shown.split('\n').filter((l) => l.trim() !== '');
    expect(lines.length).toBeGreaterThan(3);
    for (const line of lines) expect(() => JSON.parse(line) as unknown).not.toThrow();
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toContain('plugin listening');
  }, 60_000);
});
