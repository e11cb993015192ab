import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built plugin (npm test builds dist first). */
export const PLUGIN_MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/stowage.mjs');

export interface LogLine {
  level: number;
  msg: string;
  volume?: string;
  [key: string]: unknown;
}

export interface PluginProcess {
  readonly pid: number;
  /** Every JSON line the plugin printed so far, across restarts. */
  lines(): LogLine[];
  /** Lines of one volume with this message. */
  count(volume: string, msg: string): number;
  /** The plugin's stdout and stderr as text, for failure messages. */
  output(): string;
  /** kill -9: no clean-up runs, as after a crash. */
  crash(): Promise<void>;
  /** Starts it again with the same environment. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A plugin runs on localcloud only when started for development (issue 16, item 6). */
export function devFlag(env: Record<string, string | undefined>): string[] {
  return env.STOWAGE_BACKEND === 'local' ? ['--dev'] : [];
}

function answers(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.request({ socketPath: socket, path: '/VolumeDriver.Capabilities', method: 'POST' }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.end('{}');
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Runs `stowage plugin` as its own process, as dockerd meets it, with the given STOWAGE_* settings.
 * It dies with the test runner (pdeathsig), so a crashed run leaves no plugin behind.
 */
export async function startPluginProcess(env: Record<string, string>): Promise<PluginProcess> {
  if (!existsSync(PLUGIN_MAIN)) throw new Error(`${PLUGIN_MAIN} is missing: run npm run build (npm test does)`);
  const socket = env.STOWAGE_SOCKET;
  if (!socket) throw new Error('startPluginProcess needs STOWAGE_SOCKET');
  const lines: LogLine[] = [];
  let text = '';
  let child: ChildProcess;

  const launch = async (): Promise<void> => {
    child = spawn('setpriv', ['--pdeathsig', 'KILL', process.execPath, PLUGIN_MAIN, 'plugin', ...devFlag(env)], {
      // Any free port for an embedded localcloud: test files run side by side.
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', STOWAGE_LOG_LEVEL: 'debug', STOWAGE_LOCALCLOUD_LISTEN: '127.0.0.1:0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let partial = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      partial += chunk.toString();
      const complete = partial.split('\n');
      partial = complete.pop()!;
      for (const line of complete) {
        try {
          lines.push(JSON.parse(line) as LogLine);
        } catch {
          // not a log line (a Node warning): kept in text only
        }
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
    const deadline = Date.now() + 15_000;
    while (!(await answers(socket))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`plugin did not open ${socket}:\n${text.slice(-4000)}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  await launch();
  return {
    get pid() {
      return child.pid!;
    },
    lines: () => [...lines],
    count: (volume, msg) => lines.filter((l) => l.volume === volume && l.msg === msg).length,
    output: () => text,
    crash: async () => {
      child.kill('SIGKILL');
      await exited(child);
    },
    restart: launch,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited(child);
      clearTimeout(timer);
    },
  };
}
