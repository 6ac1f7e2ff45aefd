/** A pino logger whose records a test can read. */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { Logger } from 'pino';

export interface CapturedLogger {
  readonly logger: Logger;
  /** Every record logged, JSON-parsed, in order. */
  readonly records: Record<string, unknown>[];
  /** The records whose msg matches. */
  find(msg: RegExp): Record<string, unknown>[];
}

/** A pino logger at `level` that keeps every record for assertions. */
export function captureLogger(level = 'debug'): CapturedLogger {
  const records: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) records.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const logger = pino({ level, base: null }, stream);
  return { logger, records, find: (msg) => records.filter((r) => typeof r['msg'] === 'string' && msg.test(r['msg'])) };
}
