import { readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExecRunner } from './exec.js';

/** A process that keeps a mount busy, and how (cwd, root, exe, an open file). */
export interface Holder {
  pid: number;
  command: string;
  uses: string[];
}

export interface FindHoldersOptions {
  procDir: string;
  exec: ExecRunner;
}

const FUSER_TIMEOUT_MS = 10_000;

/**
 * Who keeps `target` busy: a scan of every process's cwd, root, executable and open files; when
 * that finds nobody (another PID namespace, /proc hidden from us), whatever `fuser -m` can see.
 */
export async function findHolders(target: string, options: FindHoldersOptions): Promise<Holder[]> {
  const found = await scanProc(target, options.procDir);
  if (found.length > 0) return found;
  const pids = await fuserPids(target, options.exec);
  return Promise.all(pids.map(async (pid) => ({ pid, command: await commandOf(options.procDir, pid), uses: ['fuser'] })));
}

/** `sleep (pid 42: cwd), bash (pid 7: fd /mnt/x/log)`, for error messages. */
export function describeHolders(holders: readonly Holder[]): string {
  return holders.map((h) => `${h.command} (pid ${h.pid}: ${h.uses.join(', ')})`).join(', ');
}

export function isUnder(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

async function scanProc(target: string, procDir: string): Promise<Holder[]> {
  const pids = (await readdir(procDir)).filter((name) => /^\d+$/.test(name)).map(Number);
  const holders = await Promise.all(pids.map((pid) => usesOf(procDir, pid, target)));
  return holders.filter((h): h is Holder => h !== undefined);
}

async function usesOf(procDir: string, pid: number, target: string): Promise<Holder | undefined> {
  const base = join(procDir, String(pid));
  const links = ['cwd', 'root', 'exe'];
  const fds = await readdir(join(base, 'fd')).catch(() => [] as string[]);
  links.push(...fds.map((fd) => `fd/${fd}`));
  const uses: string[] = [];
  for (const link of links) {
    const dest = await readlink(join(base, link)).catch(() => undefined);
    if (dest === undefined) continue;
    const path = dest.replace(/ \(deleted\)$/, '');
    if (isUnder(path, target)) uses.push(link.startsWith('fd/') ? `open ${path}` : link);
  }
  if (uses.length === 0) return undefined;
  return { pid, command: await commandOf(procDir, pid), uses };
}

/** A process's command name, `?` when it is gone or hidden. */
export async function commandOf(procDir: string, pid: number): Promise<string> {
  const comm = await readFile(join(procDir, String(pid), 'comm'), 'utf8').catch(() => '');
  return comm.trim() || '?';
}

async function fuserPids(target: string, exec: ExecRunner): Promise<number[]> {
  try {
    // Exit 1 means nobody was found. The pids come on stdout; the access letters on stderr.
    const { stdout } = await exec('fuser', ['-m', target], { okCodes: [0, 1], timeoutMs: FUSER_TIMEOUT_MS });
    return stdout
      .split(/\s+/)
      .filter((token) => /^\d+$/.test(token))
      .map(Number);
  } catch {
    // fuser is optional (not in every rootfs); the scan above already said what it could.
    return [];
  }
}
