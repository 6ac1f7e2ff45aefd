/**
 * Pieces for the delivery tests: a repository whose answers a test scripts,
 * profiles that say which one they are, a logger that keeps its lines.
 */
import {randomBytes} from 'node:crypto';
import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import type {AddressInfo} from 'node:net';
import {join} from 'node:path';
import {Writable} from 'node:stream';
import {pino} from 'pino';
import type {Logger} from 'pino';
import {Arrivals} from './arrivals.js';
import type {ScrapedProfile} from '../../src/profiles/profile.js';
import type {Repository, SendResult} from '../../src/repositories/repository.js';
import type {QueueSettings} from '../../src/repositories/queue.js';

/** A profile tagged with `seq`; its bytes are arbitrary (the queue never reads them). */
export function taggedProfile(seq: number, size = 200, extra: Partial<ScrapedProfile> = {}): ScrapedProfile {
  return {
    targetId: `t${seq % 7}`,
    service: 'svc',
    type: 'heap',
    labels: {instance: '127.0.0.1:6060', seq: String(seq)},
    time: 1_700_000_000_000 + seq,
    sampleCount: 1,
    url: 'http://127.0.0.1:6060/debug/pprof/heap',
    data: Buffer.concat([Buffer.from(`profile-${seq}:`), randomBytes(Math.max(0, size - 16))]),
    ...extra,
  };
}

export const seqOf = (p: ScrapedProfile): number => Number(p.labels['seq']);

export type Script = (profile: ScrapedProfile, call: number, signal: AbortSignal) => Promise<SendResult> | SendResult;

/** A repository that answers as `script` says and records every call. */
export class ScriptedRepository implements Repository {
  readonly kind = 'profefe' as const;
  readonly calls: {seq: number; at: number; result?: SendResult}[] = [];
  /** seq -> how many times it was accepted. */
  readonly accepted = new Map<number, number>();
  script: Script;
  readonly #arrivals = new Arrivals();

  constructor(
    readonly name: string,
    script: Script = () => ({status: 'ok'}),
  ) {
    this.script = script;
  }

  async send(profile: ScrapedProfile, signal: AbortSignal): Promise<SendResult> {
    const call = {seq: seqOf(profile), at: Date.now()} as {seq: number; at: number; result?: SendResult};
    this.calls.push(call);
    const result = await this.script(profile, this.calls.length - 1, signal);
    call.result = result;
    if (result.status === 'ok') this.accepted.set(call.seq, (this.accepted.get(call.seq) ?? 0) + 1);
    this.#arrivals.notify();
    return result;
  }

  /** Resolves once `n` distinct profiles were accepted. */
  waitAccepted(n: number, timeoutMs = 10_000): Promise<void> {
    return this.#arrivals.until(() => this.accepted.size >= n, timeoutMs, () => `${this.name}: waited ${timeoutMs} ms for ${n} accepted profiles, got ${this.accepted.size} (${this.calls.length} calls)`);
  }

  async close(): Promise<void> {}
}

export function settings(over: Partial<QueueSettings> = {}): QueueSettings {
  return {maxBytes: 64 * 1024 ** 2, maxAgeMs: 3_600_000, policy: {initialMs: 20, maxMs: 200}, timeoutMs: 5_000, parallelism: 4, ...over};
}

/** A pino logger whose JSON lines land in `lines`. */
export function captureLogger(): {logger: Logger; lines: Record<string, unknown>[]} {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return {logger: pino({level: 'debug'}, stream), lines};
}

export async function tempDir(prefix = 'pprof-queue-'): Promise<{dir: string; cleanup: () => Promise<void>}> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return {dir, cleanup: () => rm(dir, {recursive: true, force: true})};
}

/** Polls `cond` until it holds; throws with `what` after `timeoutMs`. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A counter's value from a prom-client metric, by labels. */
export async function metricValue(metric: {get(): Promise<{values: {labels: Record<string, string | number>; value: number}[]}>}, labels: Record<string, string>): Promise<number> {
  const {values} = await metric.get();
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((n, v) => n + v.value, 0);
}

/** A pprof target whose every answer is a distinct profile: a fixture (heap by default) with its own TimeNanos. */
export interface UniqueProfileTarget {
  /** host:port */
  readonly address: string;
  /** TimeNanos of each profile served, with when it was served (ms). */
  readonly served: {timeNanos: bigint; at: number}[];
  close(): Promise<void>;
}

export async function startUniqueProfileTarget(fixtureName = 'heap.pb.gz'): Promise<UniqueProfileTarget> {
  const {readFile} = await import('node:fs/promises');
  const {createServer} = await import('node:http');
  const {gunzipSync, gzipSync} = await import('node:zlib');
  const {Profile} = await import('pprof-format');
  const fixture = Profile.decode(gunzipSync(await readFile(new URL(`../fixtures/${fixtureName}`, import.meta.url))));
  const served: {timeNanos: bigint; at: number}[] = [];
  let last = 0n;
  const server = createServer((_req, res) => {
    // whole ms, at least 3 apart: a profile's time in ms tells them apart even when off by one
    let t = BigInt(Date.now()) * 1_000_000n;
    if (t < last + 3_000_000n) t = last + 3_000_000n;
    last = t;
    fixture.timeNanos = t;
    const body = gzipSync(fixture.encode());
    served.push({timeNanos: t, at: Date.now()});
    res.writeHead(200, {'content-type': 'application/octet-stream'});
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const {port} = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    served,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** TimeNanos of a gzipped (or raw) pprof body. */
export async function timeNanosOf(body: Buffer): Promise<bigint> {
  const {gunzipSync} = await import('node:zlib');
  const {Profile} = await import('pprof-format');
  const raw = body[0] === 0x1f && body[1] === 0x8b ? gunzipSync(body) : body;
  return BigInt(Profile.decode(raw).timeNanos);
}
