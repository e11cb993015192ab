import { pino, type Logger as PinoLogger, type Level } from 'pino';

export type Logger = PinoLogger;

const LEVELS: readonly Level[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

export function isLogLevel(value: string): value is Level {
  return (LEVELS as readonly string[]).includes(value);
}

/** `json` for machines (dockerd's log, tests), `text` for a person at a terminal. */
export type LogFormat = 'json' | 'text';

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Fields every line has, or that the text line already shows in front. */
const SHOWN = new Set(['level', 'time', 'msg', 'app', 'pid', 'hostname']);

function fieldValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  if (value !== null && typeof value === 'object' && 'message' in value && typeof value.message === 'string') return JSON.stringify(value.message);
  return JSON.stringify(value);
}

/** One JSON line as `12:03:04 WARN  message key=value …`; a line that is not JSON passes unchanged. */
export function textLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const time = typeof entry.time === 'string' ? entry.time.slice(11, 19) : '';
  const level = (LEVEL_NAMES[entry.level as number] ?? String(entry.level)).padEnd(5);
  const fields = Object.entries(entry).filter(([key, value]) => !SHOWN.has(key) && value !== undefined);
  const tail = fields.map(([key, value]) => `${key}=${fieldValue(value)}`).join(' ');
  return `${time} ${level} ${String(entry.msg ?? '')}${tail === '' ? '' : `  ${tail}`}\n`;
}

/** Text on a terminal, JSON otherwise; an explicit format wins. */
export function chooseFormat(destination: NodeJS.WritableStream, format?: LogFormat): LogFormat {
  return format ?? ((destination as NodeJS.WriteStream).isTTY === true ? 'text' : 'json');
}

/**
 * JSON lines on stdout (dockerd keeps a managed plugin's stdout in its own log), readable lines
 * when a person runs it on a terminal.
 */
export function createLogger(level: Level = 'info', destination: NodeJS.WritableStream = process.stdout, format?: LogFormat): Logger {
  const options = { level, base: { app: 'stowage' }, timestamp: pino.stdTimeFunctions.isoTime };
  if (chooseFormat(destination, format) === 'json') return pino(options, destination);
  // pino writes each entry with one write() call, so every chunk is one whole line.
  return pino(options, { write: (line: string) => destination.write(textLine(line)) });
}

/** For tests and tools that want no output. */
export const silentLogger: Logger = pino({ level: 'silent' });
