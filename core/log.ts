import { pino, type Logger as PinoLogger, type Level } from 'pino';

export type Logger = PinoLogger;

const LEVELS: readonly Level[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

export function isLogLevel(value: string): value is Level {
  return (LEVELS as readonly string[]).includes(value);
}

/** JSON lines on stdout (dockerd keeps a managed plugin's stdout in its own log). */
export function createLogger(level: Level = 'info', destination: NodeJS.WritableStream = process.stdout): Logger {
  return pino({ level, base: { app: 'stowage' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

/** For tests and tools that want no output. */
export const silentLogger: Logger = pino({ level: 'silent' });
