import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecRunner } from '../../../host/exec.js';
import { describeHolders, findHolders, isUnder } from '../../../host/holders.js';

/** A fake /proc: each process gets a comm file and links for cwd, root and open files. */
async function fakeProcess(
  proc: string,
  pid: number,
  comm: string,
  links: { cwd?: string; root?: string; fds?: string[] },
): Promise<void> {
  const base = join(proc, String(pid));
  await mkdir(join(base, 'fd'), { recursive: true });
  await writeFile(join(base, 'comm'), `${comm}\n`);
  await symlink(links.cwd ?? '/', join(base, 'cwd'));
  await symlink(links.root ?? '/', join(base, 'root'));
  for (const [fd, dest] of (links.fds ?? []).entries()) await symlink(dest, join(base, 'fd', String(fd)));
}

describe('findHolders', () => {
  let proc: string;
  const noFuser: ExecRunner = async () => {
    throw new Error('fuser should not run');
  };

  beforeEach(async () => {
    proc = await mkdtemp(join(tmpdir(), 'stowage-proc-'));
    await mkdir(join(proc, 'self'));
  });
  afterEach(async () => {
    await rm(proc, { recursive: true, force: true });
  });

  test('names processes whose cwd, root or open files lie under the target', async () => {
    await fakeProcess(proc, 4242, 'sleep', { cwd: '/mnt/stowage/v1/sub' });
    await fakeProcess(proc, 77, 'postgres', { fds: ['/dev/null', 'socket:[123]', '/mnt/stowage/v1/pg/wal (deleted)'] });
    await fakeProcess(proc, 9, 'chrooted', { root: '/mnt/stowage/v1' });
    await fakeProcess(proc, 10, 'neighbour', { cwd: '/mnt/stowage/v10', fds: ['/mnt/stowage/v10/x'] });

    const holders = await findHolders('/mnt/stowage/v1', { procDir: proc, exec: noFuser });
    const byPid = new Map(holders.map((h) => [h.pid, h]));
    expect([...byPid.keys()].sort((a, b) => a - b)).toEqual([9, 77, 4242]);
    expect(byPid.get(4242)).toEqual({ pid: 4242, command: 'sleep', uses: ['cwd'] });
    expect(byPid.get(77)?.uses).toEqual(['open /mnt/stowage/v1/pg/wal']);
    expect(byPid.get(9)?.uses).toEqual(['root']);
  });

  test('falls back to fuser -m when the scan finds nobody', async () => {
    await fakeProcess(proc, 31, 'java', {});
    const calls: string[][] = [];
    const exec: ExecRunner = async (file, args) => {
      calls.push([file, ...args]);
      return { exitCode: 0, stdout: '   31  4000', stderr: '/mnt/stowage/v1: c c' };
    };
    const holders = await findHolders('/mnt/stowage/v1', { procDir: proc, exec });
    expect(calls).toEqual([['fuser', '-m', '/mnt/stowage/v1']]);
    expect(holders).toEqual([
      { pid: 31, command: 'java', uses: ['fuser'] },
      { pid: 4000, command: '?', uses: ['fuser'] },
    ]);
  });

  test('without fuser, nobody is named', async () => {
    const exec: ExecRunner = async () => {
      throw new Error('fuser: command not found');
    };
    expect(await findHolders('/mnt/stowage/v1', { procDir: proc, exec })).toEqual([]);
  });
});

test('describeHolders', () => {
  expect(
    describeHolders([
      { pid: 42, command: 'sleep', uses: ['cwd'] },
      { pid: 7, command: 'bash', uses: ['cwd', 'open /mnt/x/log'] },
    ]),
  ).toBe('sleep (pid 42: cwd), bash (pid 7: cwd, open /mnt/x/log)');
});

test('isUnder compares whole path components', () => {
  expect(isUnder('/mnt/a', '/mnt/a')).toBe(true);
  expect(isUnder('/mnt/a/b', '/mnt/a')).toBe(true);
  expect(isUnder('/mnt/ab', '/mnt/a')).toBe(false);
  expect(isUnder('/anything', '/')).toBe(true);
});
