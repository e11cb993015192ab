/**
 * A private dockerd for end-to-end tests: its own socket, data root, exec root, pidfile, config
 * file and cgroup parent, all inside one fresh folder under os.tmpdir(), so it never touches a
 * developer's own dockerd or another test run.
 *
 * Usage (the only pattern that cleans up when a test fails):
 *
 *   let d: Dockerd;
 *   beforeAll(async () => { d = await startDockerd({ name: 'volumes' }); });
 *   afterAll(async () => { await d?.stop(); });
 *
 * Jest gives each test file a copy of `process` whose 'exit' listeners never fire, so a daemon
 * cannot be cleaned up from an exit hook. Instead two guards cover a test run that dies before
 * afterAll: dockerd is started with a parent-death signal (SIGTERM), so it shuts down gracefully
 * when the jest process goes away; and every startDockerd first sweeps the folders of earlier runs
 * whose owning process is gone (their leftover processes, mounts, cgroups and files; see
 * owned-dir.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants, readFileSync } from 'node:fs';
import { access, readFile, readdir, rmdir, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import path from 'node:path';
import { abandonedDirs, makeOwnedDir, removeTree } from './owned-dir.js';
import { run, type RunOptions, type RunResult } from './run.js';

export const DOCKERD = '/usr/sbin/dockerd';
/** Debian's client, by full path: another `docker` may come first on PATH. */
export const DOCKER = '/usr/bin/docker';
const SETPRIV = '/usr/bin/setpriv';
const UMOUNT = '/usr/bin/umount';
const PREFIX = 'stowage-dockerd-';
const CGROUP_ROOT = '/sys/fs/cgroup';
/** Keep the tail of dockerd's output; a chatty daemon must not eat the test's memory. */
const MAX_LOG_CHARS = 4 * 1024 * 1024;

export interface Dockerd {
  /** unix socket path of the daemon's API. */
  readonly socket: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  /** The one folder holding everything this daemon owns; gone after stop(). */
  readonly baseDir: string;
  readonly pid: number;
  /** Runs Debian's docker client against this daemon (no shell; args as given). */
  docker(args: string[], opts?: Pick<RunOptions, 'input' | 'allowFailure' | 'timeoutMs'>): Promise<RunResult>;
  /** dockerd's stdout and stderr so far. */
  logs(): string;
  /** Removes all containers, stops the daemon, unmounts and deletes everything it left. Idempotent. */
  stop(): Promise<void>;
}

export async function startDockerd(opts: { name?: string } = {}): Promise<Dockerd> {
  for (const [file, pkg] of [[DOCKERD, 'docker.io'], [DOCKER, 'docker.io'], [SETPRIV, 'util-linux'], [UMOUNT, 'util-linux']] as const) {
    try {
      await access(file, constants.X_OK);
    } catch {
      throw new Error(`${file} is missing: the real-dockerd tests need Debian's ${pkg} (apt-get install ${pkg})`);
    }
  }
  if (opts.name !== undefined && !/^[a-z0-9-]{1,20}$/.test(opts.name)) {
    throw new Error(`startDockerd: name ${JSON.stringify(opts.name)} must be 1-20 of a-z, 0-9, -`);
  }
  for (const dir of await abandonedDirs(PREFIX)) await sweep(dir);

  const baseDir = await makeOwnedDir(PREFIX + (opts.name ? `${opts.name}-` : ''));
  const dataRoot = path.join(baseDir, 'data');
  const execRoot = path.join(baseDir, 'exec');
  const socket = path.join(baseDir, 'docker.sock');
  const configFile = path.join(baseDir, 'daemon.json');
  // An empty config keeps /etc/docker/daemon.json (a developer's settings) out of the test.
  await writeFile(configFile, '{}\n');

  const args = [
    '--pdeathsig', 'TERM', '--', DOCKERD,
    '--data-root', dataRoot,
    '--exec-root', execRoot,
    '-H', `unix://${socket}`,
    '--pidfile', path.join(baseDir, 'docker.pid'),
    '--config-file', configFile,
    // Named after the folder: a sweep finds the containers' processes by their cgroup.
    '--cgroup-parent', path.basename(baseDir),
    '--iptables=false', '--ip-forward=false', '--ip-masq=false', '--bridge=none',
    '--storage-driver=vfs',
    '--log-level', 'debug',
  ];
  let output = '';
  const child = spawn(SETPRIV, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: baseDir });
  const append = (chunk: Buffer): void => {
    output += chunk.toString('utf8');
    if (output.length > MAX_LOG_CHARS) output = output.slice(-MAX_LOG_CHARS / 2);
  };
  child.stdout.on('data', append);
  child.stderr.on('data', append);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let spawnError: Error | undefined;
  child.once('error', (err) => { spawnError = err; });
  // A daemon that outlives a broken afterAll must not keep jest from exiting; its parent-death
  // signal then stops it. stop() takes the references back while it waits.
  child.unref();
  (child.stdout as Socket).unref();
  (child.stderr as Socket).unref();

  const clientEnv: NodeJS.ProcessEnv = { ...process.env, DOCKER_CONFIG: path.join(baseDir, 'client') };
  // -H wins over these anyway; dropping them keeps a developer's setup out of error messages.
  delete clientEnv.DOCKER_HOST;
  delete clientEnv.DOCKER_CONTEXT;
  const docker: Dockerd['docker'] = (dockerArgs, runOpts = {}) =>
    run(DOCKER, ['-H', `unix://${socket}`, ...dockerArgs], { ...runOpts, env: clientEnv });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= stopDaemon(child, exited, docker, baseDir);
    return stopping;
  };

  try {
    await waitUntilAnswering(docker, child, () => spawnError);
  } catch (err) {
    await stop().catch(() => undefined);
    throw new Error(`dockerd did not start: ${(err as Error).message}\n--- dockerd output ---\n${output.slice(-8000)}`);
  }
  return { socket, dataRoot, execRoot, baseDir, pid: child.pid!, docker, logs: () => output, stop };
}

async function waitUntilAnswering(docker: Dockerd['docker'], child: ChildProcess, spawnError: () => Error | undefined): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const err = spawnError();
    if (err) throw err;
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`dockerd exited (${child.exitCode ?? child.signalCode})`);
    }
    const version = await docker(['version', '--format', '{{.Server.Version}}'], { allowFailure: true, timeoutMs: 10_000 });
    if (version.code === 0) return;
    if (Date.now() > deadline) throw new Error(`docker version still fails after 60 s: ${version.stderr.trim()}`);
    await sleep(200);
  }
}

async function stopDaemon(child: ChildProcess, exited: Promise<void>, docker: Dockerd['docker'], baseDir: string): Promise<void> {
  child.ref();
  const running = child.exitCode === null && child.signalCode === null;
  if (running) {
    // Removing containers first makes dockerd send every Unmount to the plugins while both still run.
    const ids = await docker(['ps', '-aq'], { allowFailure: true, timeoutMs: 30_000 });
    const list = ids.stdout.split('\n').filter((id) => id !== '');
    if (ids.code === 0 && list.length > 0) {
      await docker(['rm', '-f', ...list], { allowFailure: true, timeoutMs: 60_000 });
    }
    child.kill('SIGTERM');
    const escalate = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(escalate);
  }
  await sweep(baseDir);
}

/**
 * Removes everything a daemon rooted at baseDir may have left: processes (dockerd, containerd,
 * shims by their command line; container processes by their cgroup), mounts, cgroups, files.
 */
async function sweep(baseDir: string): Promise<void> {
  const cgroupParent = path.basename(baseDir);
  const cgroups = await findCgroups(CGROUP_ROOT, cgroupParent, 0);
  const pids = new Set<number>();
  for (const pid of await pidsMentioning(baseDir)) pids.add(pid);
  for (const dir of cgroups) for (const pid of await pidsInCgroup(dir)) pids.add(pid);
  pids.delete(process.pid);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  const deadline = Date.now() + 10_000;
  while ([...pids].some(isAlive) && Date.now() < deadline) await sleep(50);

  const problems: string[] = [];
  // Cgroups can only go once their processes are gone; the folder only once nothing is mounted in it.
  for (const dir of cgroups) {
    try {
      await removeCgroup(dir);
    } catch (err) {
      problems.push(`cgroup ${dir}: ${(err as Error).message}`);
    }
  }
  await removeTree(baseDir).catch((err: Error) => problems.push(err.message));
  if (problems.length > 0) throw new Error(`cleanup of ${baseDir} incomplete: ${problems.join('; ')}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie is dead for our purpose; its parent will reap it.
  return !/\) Z /.test(readStatSync(pid));
}

function readStatSync(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return '';
  }
}

async function pidsMentioning(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').some((arg) => arg.includes(text))) pids.push(Number(entry));
  }
  return pids;
}

async function findCgroups(dir: string, name: string, depth: number): Promise<string[]> {
  if (depth > 8) return [];
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const found: string[] = [];
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const child = path.join(dir, e.name);
    if (e.name === name) found.push(child);
    else found.push(...(await findCgroups(child, name, depth + 1)));
  }
  return found;
}

async function pidsInCgroup(dir: string): Promise<number[]> {
  const pids = (await readFile(path.join(dir, 'cgroup.procs'), 'utf8').catch(() => ''))
    .split('\n').filter((l) => l !== '').map(Number);
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (e.isDirectory()) pids.push(...(await pidsInCgroup(path.join(dir, e.name))));
  }
  return pids;
}

/** A cgroup folder is removed with rmdir, children first; its files go with it. */
async function removeCgroup(dir: string): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) await removeCgroup(path.join(dir, e.name));
  }
  await rmdir(dir);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
