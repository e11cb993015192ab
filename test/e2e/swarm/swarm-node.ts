/**
 * One Swarm node on this machine: its namespaces, a dockerd inside them (network included) and the
 * Stowage plugin in its mount and UTS namespaces but the host's network, so the plugin reaches
 * localcloud on 127.0.0.1 while its socket and mounts are the node's. Both write to log files in
 * the node's folder.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DOCKER, DOCKERD, type Dockerd } from '../../helpers/dockerd.js';
import type { RunOptions, RunResult } from '../../helpers/run.js';
import { PLUGIN_SOCKET_DIR } from '../../helpers/plugin-name.js';
import { devFlag, PLUGIN_MAIN } from '../../helpers/plugin-process.js';
import { socketAnswers } from '../../../plugin/server.js';
import { startNodeNamespaces, type NodeNamespaces } from './node-namespaces.js';

/** The built plugin (npm test builds dist first). */
/** Each node has its own plugins folder, so one fixed name serves every node and every test run. */
export const PLUGIN_NAME = 'stowage';

export interface PluginLogLine {
  /** RFC 3339, as pino writes it. */
  time: string;
  level: number;
  msg: string;
  volume?: string;
  [key: string]: unknown;
}

export interface SwarmNode extends Dockerd {
  readonly name: string;
  readonly namespaces: NodeNamespaces;
  /** Every JSON line the node's plugin printed, across restarts. */
  pluginLog(): PluginLogLine[];
  /** Restarts the plugin with these settings changed (the rest as at start). */
  restartPlugin(change: Record<string, string>): Promise<void>;
  /** Kills every process of the node at once: no Unmount, no detach, as when a machine dies. */
  crash(): Promise<void>;
}

export interface SwarmNodeOptions {
  name: string;
  /** The node's own folder (owned by the test run); everything of the node lives under it. */
  dir: string;
  /** STOWAGE_* settings of the node's plugin, besides the socket, mount root and state folder. */
  pluginEnv: Record<string, string>;
}

export async function startSwarmNode(o: SwarmNodeOptions): Promise<SwarmNode> {
  const ns = await startNodeNamespaces(o.dir, `stowage-${o.name}`);
  const socket = path.join(o.dir, 'docker.sock');
  const dataRoot = path.join(o.dir, 'data');
  const execRoot = path.join(o.dir, 'exec');
  const dockerdLog = path.join(o.dir, 'dockerd.log');
  const pluginLogFile = path.join(o.dir, 'plugin.log');
  const configFile = path.join(o.dir, 'daemon.json');
  await writeFile(configFile, '{}\n');

  let pluginEnv: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    STOWAGE_LOG_LEVEL: 'debug',
    STOWAGE_SOCKET: path.join(PLUGIN_SOCKET_DIR, `${PLUGIN_NAME}.sock`),
    STOWAGE_MOUNT_ROOT: path.join(o.dir, 'mnt'),
    STOWAGE_STATE_DIR: path.join(o.dir, 'state'),
    ...o.pluginEnv,
  };
  let plugin: ChildProcess | undefined;
  const startPlugin = async (): Promise<void> => {
    const [file, ...args] = ns.command([process.execPath, PLUGIN_MAIN, 'plugin', ...devFlag(pluginEnv)], { net: false, deathSignal: 'KILL' });
    plugin = spawnLogged(file!, args, pluginLogFile, pluginEnv);
    // The socket is the node's; from the host it is the same file under the node's plugins folder.
    await waitFor(() => socketAnswers(path.join(ns.pluginsDir, `${PLUGIN_NAME}.sock`)), 15_000, () => `plugin of ${o.name} did not open its socket:\n${tail(pluginLogFile)}`, plugin);
  };
  const stopPlugin = async (): Promise<void> => {
    if (!plugin || plugin.exitCode !== null || plugin.signalCode !== null) return;
    const exited = new Promise((resolve) => plugin!.once('exit', resolve));
    plugin.kill('SIGTERM');
    const escalate = setTimeout(() => plugin?.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(escalate);
  };

  const clientEnv: NodeJS.ProcessEnv = { ...process.env, DOCKER_CONFIG: path.join(o.dir, 'client') };
  delete clientEnv.DOCKER_HOST;
  delete clientEnv.DOCKER_CONTEXT;
  const docker: Dockerd['docker'] = (args, runOpts = {}) => dockerCli(['-H', `unix://${socket}`, ...args], clientEnv, runOpts);

  let dockerd: ChildProcess | undefined;
  const node: SwarmNode = {
    name: o.name,
    namespaces: ns,
    socket,
    dataRoot,
    execRoot,
    baseDir: o.dir,
    get pid() {
      return dockerd?.pid ?? 0;
    },
    docker,
    logs: () => tail(dockerdLog),
    pluginLog: () => parseLog(pluginLogFile),
    restartPlugin: async (change) => {
      await stopPlugin();
      pluginEnv = { ...pluginEnv, ...change };
      await startPlugin();
    },
    crash: () => ns.kill(),
    // A test bed's node goes the way a lost machine goes: the volumes' fate is localcloud's to settle.
    stop: () => ns.kill(),
  };
  try {
    // The plugin first: dockerd must find its socket when `docker volume ls` looks it up.
    await startPlugin();
    const [file, ...args] = ns.command(
      [
        DOCKERD,
        '--data-root', dataRoot,
        '--exec-root', execRoot,
        '-H', `unix://${socket}`,
        '--pidfile', path.join(o.dir, 'docker.pid'),
        '--config-file', configFile,
        '--cgroup-parent', cgroupParent(o.dir),
        '--iptables=false', '--ip-forward=false', '--ip-masq=false', '--bridge=none',
        '--storage-driver=vfs',
      ],
      { net: true, deathSignal: 'TERM' },
    );
    dockerd = spawnLogged(file!, args, dockerdLog, process.env);
    await waitFor(
      async () => (await docker(['version', '--format', '{{.Server.Version}}'], { allowFailure: true, timeoutMs: 10_000 })).code === 0,
      60_000,
      () => `dockerd of ${o.name} did not answer:\n${tail(dockerdLog)}`,
      dockerd,
    );
  } catch (err) {
    await ns.kill();
    throw err;
  }
  return node;
}

/** Named after the node's folder, so dockerd's leftover cgroups can be found and removed. */
export function cgroupParent(dir: string): string {
  return path.basename(dir);
}

/**
 * The docker client, as helpers/run.ts runs it but without writing to its stdin: run.ts ends stdin
 * after spawning, and a client that exits first (a busy manager answers fast with an error) makes
 * that an uncaught EPIPE which fails the whole file.
 */
function dockerCli(args: string[], env: NodeJS.ProcessEnv, o: Pick<RunOptions, 'allowFailure' | 'timeoutMs' | 'input'>): Promise<RunResult> {
  if (o.input !== undefined) return Promise.reject(new Error('swarm nodes run the docker client without stdin'));
  return new Promise((resolve, reject) => {
    execFile(DOCKER, args, { env, timeout: o.timeoutMs ?? 60_000, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : undefined;
      if (code === 0 || (code !== undefined && o.allowFailure)) resolve({ code, stdout, stderr });
      else reject(new Error(`${DOCKER} ${args.join(' ')}: ${err?.killed ? `no answer within ${o.timeoutMs ?? 60_000} ms` : err?.message}\nstderr: ${stderr}`));
    });
  });
}

function spawnLogged(file: string, args: string[], logFile: string, env: NodeJS.ProcessEnv): ChildProcess {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(file, args, { env, stdio: ['ignore', fd, fd] });
    // The node's processes must not keep jest alive when a test forgets them; crash() kills them.
    child.unref();
    return child;
  } finally {
    closeSync(fd);
  }
}

function parseLog(file: string): PluginLogLine[] {
  const lines: PluginLogLine[] = [];
  for (const line of readText(file).split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as PluginLogLine);
    } catch {
      // A line being written right now; the next read has it whole.
    }
  }
  return lines;
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function tail(file: string): string {
  return readText(file).slice(-6000);
}

async function waitFor(ready: () => Promise<boolean>, timeoutMs: number, failure: () => string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) throw new Error(failure());
    await new Promise((r) => setTimeout(r, 100));
  }
}
