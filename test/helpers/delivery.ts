/**
 * Pieces for the delivery tests: a repository whose answers a test scripts,
 * queue settings, a temporary folder, a target whose every profile differs.
 */
import {mkdtemp, rm} from 'node:fs/promises';
import {createServer} from 'node:http';
import {tmpdir} from 'node:os';
import type {AddressInfo} from 'node:net';
import {join} from 'node:path';
import {gunzipSync, gzipSync} from 'node:zlib';
import {Profile} from 'pprof-format';
import {fixtureProfile, seqOf} from './profiles.js';
import {Changes, waitUntil} from './wait.js';
import type {ScrapedProfile} from '../../src/profiles/profile.js';
import type {Repository, SendResult} from '../../src/repositories/repository.js';
import type {QueueSettings} from '../../src/delivery/settings.js';

export type Script = (profile: ScrapedProfile, call: number, signal: AbortSignal) => Promise<SendResult> | SendResult;

/** A repository that answers as `script` says and records every call. */
export class ScriptedRepository implements Repository {
  readonly kind = 'profefe' as const;
  readonly calls: {seq: number; at: number; result?: SendResult}[] = [];
  /** seq -> how many times it was accepted. */
  readonly accepted = new Map<number, number>();
  script: Script;
  readonly #changes = new Changes();

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
    this.#changes.notify();
    return result;
  }

  /** Resolves once `n` distinct profiles were accepted. */
  async waitAccepted(n: number, timeoutMs = 10_000): Promise<void> {
    await waitUntil(() => `${n} profiles accepted by ${this.name} (got ${this.accepted.size} in ${this.calls.length} calls)`, () => this.accepted.size >= n, {timeoutMs, wake: this.#changes});
  }

  async close(): Promise<void> {}
}

export function settings(over: Partial<QueueSettings> = {}): QueueSettings {
  return {maxBytes: 64 * 1024 ** 2, maxAgeMs: 3_600_000, policy: {initialMs: 20, maxMs: 200}, timeoutMs: 5_000, parallelism: 4, ...over};
}

export async function tempDir(prefix = 'pprof-queue-'): Promise<{dir: string; cleanup: () => Promise<void>}> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return {dir, cleanup: () => rm(dir, {recursive: true, force: true})};
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
  const fixture = fixtureProfile(fixtureName);
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
  const raw = body[0] === 0x1f && body[1] === 0x8b ? gunzipSync(body) : body;
  return BigInt(Profile.decode(raw).timeNanos);
}
