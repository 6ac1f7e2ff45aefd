/**
 * The bare relay: the least code that does the daemon's job, as the
 * baseline for its cost. For each target × type, at a hashed offset within
 * the interval, GET the profile and POST the bytes as they came to the sink.
 * No validation, no labels, no decompression, no queue, no retry.
 *
 *   node --import tsx bench/relay.ts --targets 1000 --types heap,goroutine,block,mutex \
 *     --interval 15s --duration 60s --sink http://127.0.0.1:PORT [--concurrency 64] [--port 6060]
 *     [--timeout 10s] [--cpu-seconds 10]
 *
 * Prints one JSON line of its own counts when the duration is over and the
 * requests in flight have finished.
 */
import {parseArgs} from 'node:util';
import {Agent, request} from 'undici';
import {parseDuration, parseList, parseWhole, runMain, UsageError} from './lib/flags.js';
import {FLEET_TYPES, isFleetType, MAX_TARGETS, offsetMs, profilePath, targetHost} from './lib/layout.js';
import type {FleetType} from './lib/layout.js';

/** A FIFO gate bounding requests in flight. */
class Gate {
  #free: number;
  readonly #waiting: Array<() => void> = [];
  constructor(size: number) {
    this.#free = size;
  }
  async acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }
  release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free++;
  }
}

function quantile(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function main(): Promise<void> {
  const {values} = parseArgs({
    options: {
      targets: {type: 'string'},
      types: {type: 'string', default: 'heap,goroutine,block,mutex'},
      interval: {type: 'string', default: '15s'},
      duration: {type: 'string', default: '60s'},
      sink: {type: 'string'},
      concurrency: {type: 'string', default: '64'},
      port: {type: 'string', default: '6060'},
      timeout: {type: 'string', default: '10s'},
      'cpu-seconds': {type: 'string', default: '10'},
    },
  });
  if (values.targets === undefined) throw new UsageError('--targets N is required');
  if (values.sink === undefined) throw new UsageError('--sink URL is required (the profefe sink, e.g. http://127.0.0.1:10100)');
  const n = parseWhole(values.targets, '--targets', 1, MAX_TARGETS);
  const types = parseList(values.types, '--types');
  for (const t of types) if (!isFleetType(t)) throw new UsageError(`--types: ${JSON.stringify(t)} is not one of ${FLEET_TYPES.join(', ')}`);
  const intervalMs = parseDuration(values.interval, '--interval');
  const durationMs = parseDuration(values.duration, '--duration');
  const concurrency = parseWhole(values.concurrency, '--concurrency', 1);
  const port = parseWhole(values.port, '--port', 1, 65535);
  const timeoutMs = parseDuration(values.timeout, '--timeout');
  const cpuSeconds = parseWhole(values['cpu-seconds'], '--cpu-seconds', 1);
  const sink = new URL(values.sink);
  const sinkBase = sink.origin;

  const agent = new Agent();
  const gate = new Gate(concurrency);
  const counts = {ticks: 0, skipped: 0, scraped: 0, scrapeErrors: 0, sent: 0, sendErrors: 0, bytes: 0};
  const errors: Record<string, number> = {};
  const lateness: number[] = [];
  const noteError = (what: string, err: unknown): void => {
    const key = `${what}: ${err instanceof Error ? (err as NodeJS.ErrnoException).code ?? err.message : String(err)}`;
    errors[key] = (errors[key] ?? 0) + 1;
  };

  const scrapeAndSend = async (i: number, type: FleetType, due: number): Promise<void> => {
    await gate.acquire();
    try {
      lateness.push(Date.now() - due);
      const url = `http://${targetHost(i)}:${port}${profilePath(type, cpuSeconds)}`;
      const limit = timeoutMs + (type === 'cpu' ? cpuSeconds * 1000 : 0);
      let body: Buffer;
      try {
        const res = await request(url, {dispatcher: agent, headersTimeout: limit, bodyTimeout: limit});
        body = Buffer.from(await res.body.arrayBuffer());
        if (res.statusCode < 200 || res.statusCode > 299) throw new Error(`HTTP ${res.statusCode}`);
      } catch (err) {
        counts.scrapeErrors++;
        noteError('scrape', err);
        return;
      }
      counts.scraped++;
      try {
        const res = await request(`${sinkBase}/api/0/profiles?service=svc-${i}&type=${type}`, {
          method: 'POST',
          body,
          dispatcher: agent,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        });
        await res.body.dump();
        if (res.statusCode < 200 || res.statusCode > 299) throw new Error(`HTTP ${res.statusCode}`);
        counts.sent++;
        counts.bytes += body.length;
      } catch (err) {
        counts.sendErrors++;
        noteError('send', err);
      }
    } finally {
      gate.release();
    }
  };

  const start = Date.now();
  const end = start + durationMs;
  const inFlight = new Set<Promise<void>>();
  const timers = new Set<NodeJS.Timeout>();

  // One loop per target × type. Each tick is due at start + offset + k × interval
  // (computed, not chained, so delays do not accumulate); a tick whose
  // previous scrape still runs is skipped, as the daemon does.
  for (let i = 0; i < n; i++) {
    for (const type of types as FleetType[]) {
      let k = 0;
      let busy = false;
      const offset = offsetMs(`${targetHost(i)}:${port}`, type, intervalMs);
      const schedule = (): void => {
        const due = start + offset + k * intervalMs;
        if (due >= end) return;
        const timer = setTimeout(() => {
          timers.delete(timer);
          k++;
          counts.ticks++;
          if (busy) {
            counts.skipped++;
          } else {
            busy = true;
            const p = scrapeAndSend(i, type, due).finally(() => {
              busy = false;
              inFlight.delete(p);
            });
            inFlight.add(p);
          }
          schedule();
        }, due - Date.now());
        timers.add(timer);
      };
      schedule();
    }
  }

  await new Promise((resolve) => setTimeout(resolve, Math.max(0, end - Date.now())));
  for (const t of timers) clearTimeout(t);
  await Promise.allSettled([...inFlight]);
  await agent.close();

  lateness.sort((a, b) => a - b);
  const cpu = process.cpuUsage();
  const result = {
    relay: {targets: n, types, intervalMs, durationMs, concurrency},
    ...counts,
    errors,
    latenessMs: {p50: quantile(lateness, 0.5), p99: quantile(lateness, 0.99), max: lateness.at(-1) ?? null},
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    maxRssKiB: process.resourceUsage().maxRSS,
    elapsedMs: Date.now() - start,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

runMain('relay', main);
