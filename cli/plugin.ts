import { rm } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, settingsHelp, type Config } from '../plugin/config.js';
import { ConfigError } from '../core/errors.js';
import { createLogger, type Logger } from '../core/log.js';
import { startPlugin } from '../plugin/main.js';
import { Metrics } from '../plugin/metrics.js';
import { socketAnswers } from '../plugin/server.js';
import { cleanLocalcloud } from '../localcloud/index.js';
import { embeddedLocalcloudDir, openBackend } from './backend.js';
import { FolderInUseError, lockFolder } from './folder-lock.js';

const USAGE = `Usage: stowage plugin [--dev [--fresh]]

Runs the Docker volume plugin on STOWAGE_SOCKET, with settings from the environment.

  --dev     development: STOWAGE_BACKEND defaults to local, an embedded localcloud emulator
            (npm start runs this); without --dev the plugin runs on AWS only
  --fresh   with --dev: release and delete the embedded localcloud's state first
            (its volumes, snapshots and EFS folders, under STOWAGE_STATE_DIR/localcloud)

Settings (environment):
`;

/** In-flight requests get this long to answer after SIGTERM; the whole stop is bounded by STOP_LIMIT_MS. */
const STOP_GRACE_MS = 4000;
/** docker plugin disable, systemd and a node drain expect a prompt stop. */
const STOP_LIMIT_MS = 9000;

interface PluginArgs {
  dev: boolean;
  fresh: boolean;
}

function parse(argv: string[]): PluginArgs | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: { dev: { type: 'boolean', default: false }, fresh: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h', default: false } },
  });
  if (values.help) return 'help';
  if (values.fresh && !values.dev) throw new ConfigError('--fresh empties the embedded localcloud: it needs --dev');
  return { dev: values.dev, fresh: values.fresh };
}

/** The docker CLI's name for this plugin: its socket's name. */
function driverName(config: Config): string {
  return path.basename(config.socket, '.sock');
}

/**
 * Exits the process after the first SIGTERM or SIGINT has stopped what needs stopping, within
 * STOP_LIMIT_MS whatever hangs; a second signal exits at once.
 */
function onStopSignal(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    stopping = true;
    log.info({ signal, limitMs: STOP_LIMIT_MS }, 'stopping: no new requests; background work resumes at the next start');
    setTimeout(() => {
      log.warn({ limitMs: STOP_LIMIT_MS }, 'stop took too long: exiting');
      process.exit(1);
    }, STOP_LIMIT_MS).unref();
    stop().then(
      () => {
        log.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handle);
  process.on('SIGINT', handle);
}

export async function pluginCommand(argv: string[]): Promise<number> {
  let args: PluginArgs | 'help';
  let config: Config;
  try {
    args = parse(argv);
    if (args === 'help') {
      process.stdout.write(USAGE + settingsHelp());
      return 0;
    }
    config = loadConfig(process.env, { backend: args.dev ? 'local' : 'aws' });
    if (config.backend === 'local' && !args.dev) {
      throw new ConfigError('STOWAGE_BACKEND=local runs the localcloud emulator, a development tool: start it with npm start or stowage plugin --dev');
    }
  } catch (err) {
    // One line for a bad setting: it is what dockerd's log shows of a managed plugin that did not start.
    if (err instanceof ConfigError) {
      process.stderr.write(`stowage: ${err.message}\n`);
      return 2;
    }
    if ((err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`stowage plugin: ${(err as Error).message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  // Before anything starts: a second plugin on the same state or socket must leave the first alone.
  let lock;
  try {
    lock = await lockFolder(config.stateDir, 'stowage plugin');
    if (await socketAnswers(config.socket)) throw new FolderInUseError(`another process is already serving ${config.socket}`);
  } catch (err) {
    if (!(err instanceof FolderInUseError)) throw err;
    process.stderr.write(`stowage plugin: ${err.message}\n`);
    return 1;
  }
  const log = createLogger(config.logLevel, process.stdout, config.logFormat);
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));
  if (config.backend === 'local') log.info('development mode (--dev): STOWAGE_BACKEND=local, not for production');

  if (args.fresh && config.localcloudUrl === undefined) {
    const dir = embeddedLocalcloudDir(config);
    await cleanLocalcloud(dir);
    await rm(dir, { recursive: true, force: true });
    log.info({ dir }, 'started fresh: the embedded localcloud state was deleted');
  }

  // Off unless STOWAGE_METRICS_ADDR is set; then it sees every AWS call the backend counts.
  const metrics = config.metricsAddr ? new Metrics() : undefined;
  const backend = await openBackend(config, log, metrics);
  metrics?.watchCalls(backend.counter);
  let plugin;
  try {
    plugin = await startPlugin({
      config, drivers: backend.drivers, log, unavailableBackings: backend.unavailable, ...(metrics && { metrics }),
    });
  } catch (err) {
    // An embedded localcloud would keep the process alive after the error is printed.
    await backend.close();
    throw err;
  }
  onStopSignal(log, async () => {
    await plugin.close({ graceMs: STOP_GRACE_MS });
    await backend.close();
    await lock.release();
  });
  const driver = driverName(config);
  log.info(`ready; try: docker volume create -d ${driver} --opt backing=relocatable --opt size=1 db (without backing, a volume is ${config.defaultBacking})`);
  // Runs until a signal stops it (onStopSignal exits the process).
  return new Promise<number>(() => undefined);
}
