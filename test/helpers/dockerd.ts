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
 * whose owning process is gone (their leftover processes, mounts, cgroups and files).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants, readFileSync } from 'node:fs';
import { access, mkdtemp, readFile, readdir, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
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
  await sweepAbandoned();

  const baseDir = await mkdtemp(path.join(os.tmpdir(), PREFIX + (opts.name ? `${opts.name}-` : '')));
  // Written before anything else exists, so a later sweep knows whether this folder is still in use.
  await writeFile(path.join(baseDir, 'owner'), await ownerStamp(process.pid));
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
export async function sweep(baseDir: string): Promise<void> {
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
  for (let pass = 0; pass < 5; pass++) {
    const mounts = await mountsUnder(baseDir);
    if (mounts.length === 0) break;
    // Deepest and newest first: later lines of mountinfo may sit on top of earlier ones.
    for (const mountpoint of mounts.reverse()) {
      const r = await run(UMOUNT, [mountpoint], { allowFailure: true });
      if (r.code !== 0) await run(UMOUNT, ['-l', mountpoint], { allowFailure: true });
    }
  }
  const stuck = await mountsUnder(baseDir);
  if (stuck.length > 0) problems.push(`still mounted: ${stuck.join(', ')}`);

  for (const dir of cgroups) {
    try {
      await removeCgroup(dir);
    } catch (err) {
      problems.push(`cgroup ${dir}: ${(err as Error).message}`);
    }
  }
  if (stuck.length === 0) await rm(baseDir, { recursive: true, force: true });
  if (problems.length > 0) throw new Error(`cleanup of ${baseDir} incomplete: ${problems.join('; ')}`);
}

/** Sweeps the folders of earlier runs whose owner (a jest process) is gone. */
async function sweepAbandoned(): Promise<void> {
  const tmp = os.tmpdir();
  for (const entry of await readdir(tmp)) {
    if (!entry.startsWith(PREFIX)) continue;
    const dir = path.join(tmp, entry);
    const owner = await readFile(path.join(dir, 'owner'), 'utf8').catch(() => undefined);
    if (owner === undefined) {
      // Either being set up right now by another run, or left by a crash long ago.
      const made = (await stat(dir).catch(() => undefined))?.mtimeMs;
      if (made === undefined || Date.now() - made < 60_000) continue;
    } else {
      const pid = Number(owner.split(' ')[0]);
      if (owner === (await ownerStamp(pid).catch(() => ''))) continue;
    }
    await sweep(dir);
  }
}

/** pid plus start time: a reused pid does not pass for the process that made the folder. */
async function ownerStamp(pid: number): Promise<string> {
  const statLine = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = statLine.slice(statLine.lastIndexOf(')') + 2).split(' ');
  return `${pid} ${fields[19]}`;
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

async function mountsUnder(dir: string): Promise<string[]> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  return mountinfo
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => unescapeMountPath(line.split(' ')[4]!))
    .filter((mp) => mp === dir || mp.startsWith(dir + '/'));
}

/** mountinfo writes space, tab, newline and backslash as octal escapes. */
function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
