import { loadConfig, type Config } from '../plugin/config.js';
import { ConfigError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { startPlugin } from '../plugin/main.js';
import { Metrics } from '../plugin/metrics.js';
import { openBackend } from './backend.js';

const USAGE = `Usage: stowage plugin [--default-backend aws|local]

Runs the Docker volume plugin on STOWAGE_SOCKET. Settings come from the environment (see README).
--default-backend sets STOWAGE_BACKEND when the environment does not (npm start uses local).
`;

function parseArgs(argv: string[]): { defaultBackend: Config['backend'] } | string {
  let defaultBackend: Config['backend'] = 'aws';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') return USAGE;
    if (arg === '--default-backend' && (argv[i + 1] === 'aws' || argv[i + 1] === 'local')) {
      defaultBackend = argv[++i] as Config['backend'];
      continue;
    }
    return `stowage plugin: unexpected argument ${JSON.stringify(arg)}\n\n${USAGE}`;
  }
  return { defaultBackend };
}

export async function pluginCommand(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  if (typeof args === 'string') {
    (args === USAGE ? process.stdout : process.stderr).write(args);
    return args === USAGE ? 0 : 2;
  }
  let config: Config;
  try {
    config = loadConfig(process.env, { backend: args.defaultBackend });
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`stowage: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  process.on('unhandledRejection', (err) => log.error({ err }, 'unhandled rejection'));

  // Off unless STOWAGE_METRICS_ADDR is set; then it sees every AWS call the backend counts.
  const metrics = config.metricsAddr ? new Metrics() : undefined;
  const backend = await openBackend(config, log, metrics);
  metrics?.watchCalls(backend.counter);
  const plugin = await startPlugin({
    config, drivers: backend.drivers, log, unavailableBackings: backend.unavailable, ...(metrics && { metrics }),
  });

  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      log.info({ signal }, 'stopping');
      resolve();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await plugin.close();
  await backend.close();
  return 0;
}
