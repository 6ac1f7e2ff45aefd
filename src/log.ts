import { pino } from 'pino';
import type { DestinationStream, Logger } from 'pino';
import { createRequire } from 'node:module';
import type PinoPretty from 'pino-pretty';
import { logfmtLine } from './logfmt.js';

export type { Logger };

/** How log lines are written: JSON lines, or logfmt as Prometheus and Alloy write it. */
export const LOG_FORMATS = ['json', 'logfmt'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface LogOptions {
  readonly level?: string;
  /** `run` logs to stdout; the other commands keep stdout for their result. */
  readonly stream?: 'stdout' | 'stderr';
  /** Given: lines in this format, on a terminal too. Not given: JSON lines, readable ones on a terminal. */
  readonly format?: LogFormat | undefined;
}

/** JSON lines or logfmt, levels by name (`"level":"warn"`, `level=warn`); readable lines on a terminal when no format is asked for. */
export function createLogger(options: LogOptions = {}): Logger {
  const fd = options.stream === 'stderr' ? 2 : 1;
  const isTty = (fd === 1 ? process.stdout : process.stderr).isTTY === true;
  const base = { level: options.level ?? 'info', base: null, timestamp: pino.stdTimeFunctions.isoTime };
  if (isTty && options.format === undefined) {
    // only a terminal needs the pretty printer: a service does not load it
    const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
    return pino(base, pretty({ destination: fd, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' }));
  }
  const named = { ...base, formatters: { level: (label: string) => ({ level: label }) } };
  const destination = pino.destination({ dest: fd, sync: true });
  return pino(named, options.format === 'logfmt' ? logfmtStream(destination) : destination);
}

/** pino writes each record as one JSON line; this writes it on as logfmt. */
export function logfmtStream(out: { write(line: string): unknown }): DestinationStream {
  return { write: (line: string) => void out.write(logfmtLine(line)) };
}

/** A logger that drops everything, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
