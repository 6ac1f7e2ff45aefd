import { pino } from 'pino';
import type { Logger } from 'pino';
import { createRequire } from 'node:module';
import type PinoPretty from 'pino-pretty';

export type { Logger };

export interface LogOptions {
  readonly level?: string;
  /** `run` logs to stdout; the other commands keep stdout for their result. */
  readonly stream?: 'stdout' | 'stderr';
}

/** JSON lines, or readable lines when the stream is a terminal. */
export function createLogger(options: LogOptions = {}): Logger {
  const fd = options.stream === 'stderr' ? 2 : 1;
  const isTty = (fd === 1 ? process.stdout : process.stderr).isTTY === true;
  const base = { level: options.level ?? 'info', base: null, timestamp: pino.stdTimeFunctions.isoTime };
  if (isTty) {
    // only a terminal needs the pretty printer: a service does not load it
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
    return pino(base, pretty({ destination: fd, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
  }
  return pino(base, pino.destination({ dest: fd, sync: true }));
}

/** A logger that drops everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
