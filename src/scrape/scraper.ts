import { request } from 'undici';
import type { Dispatcher } from 'undici';
import { CallSignal } from '../abort.js';
import { DEFAULT_PROFILE_LIMITS, formatDuration, formatSize } from '../config/index.js';
import type { ProfileLimits } from '../config/index.js';
import { readBodyUpTo } from '../http/index.js';
import type { TargetClient } from '../http/index.js';
import { isTrace, profileTime } from '../profiles/profile.js';
import type { ScrapedProfile } from '../profiles/profile.js';
import type { Target, TargetProfile } from '../targets/index.js';
import { BodyError, checkProfileBody, checkTraceBody, describeBody } from './body.js';
import type { TakeSlot } from './scheduler.js';

/** What went wrong, as the `result` label of the scrape metrics shows it. */
export type ScrapeFailure = 'http_error' | 'busy' | 'timeout' | 'network' | 'invalid' | 'too_large' | 'redirect';

export type ScrapeOutcome =
  | {
      readonly ok: true;
      readonly profile: ScrapedProfile;
      readonly bytes: number;
      readonly durationMs: number;
      /** The profile's own time (ms) when it was too far from the scrape to be used. */
      readonly ignoredTimeMs?: number;
    }
  | { readonly ok: false; readonly result: ScrapeFailure; readonly reason: string; readonly bytes: number; readonly durationMs: number };

export interface ScraperOptions {
  /** Per request; a CPU-style type gets its seconds on top. */
  readonly timeout: number;
  readonly maxProfileSize: number;
  readonly maxDecompressedSize: number;
  /** What a profile may hold (`scrape.max_samples` and the rest); the schema's defaults when not given. */
  readonly limits?: ProfileLimits | undefined;
  /**
   * A CPU-style scrape's concurrency slot, taken once the answer starts (Go
   * writes the profile, headers and all, at the end of the window; a trace
   * streams from its start, and holds the slot for most of its window) and
   * held while the body is read and checked. Waiting for it counts against
   * the timeout.
   */
  readonly slot?: TakeSlot | undefined;
  /**
   * Another scrape of the target is due before an idle connection would be
   * closed anyway (see KEEP_ALIVE_MS). When false, the request asks for its
   * connection to be closed after the answer: a connection kept idle until the
   * next scrape a minute away would cost memory and a file descriptor for
   * nothing. Default true.
   */
  readonly keepConnection?: boolean | undefined;
}

const MAX_REDIRECTS = 5;

class ScrapeError extends Error {
  override readonly name = 'ScrapeError';
  constructor(
    readonly result: ScrapeFailure,
    message: string,
    readonly bytes = 0,
  ) {
    super(message);
  }
}

/** Takes one profile from one target: one HTTP GET, limits, and the pprof check (the trace type: the Go execution trace check). */
export async function scrapeProfile(target: Target, profile: TargetProfile, client: TargetClient, options: ScraperOptions, signal: AbortSignal): Promise<ScrapeOutcome> {
  const started = Date.now();
  const budget = options.timeout + (profile.seconds ?? 0) * 1000;
  const call = new CallSignal(signal, budget);
  const held: Held = { release: undefined, waiting: false };
  try {
    const trace = isTrace(profile);
    const via = { dispatcher: dispatcherFor(profile, client), reset: options.keepConnection === false };
    const { body, contentType } = await fetchBody(profile.url, client, via, options.maxProfileSize, call.signal, options.slot, held, trace);
    if (trace) {
      // no time inside: filed under the scrape start, where its window begins; no samples, and not empty for it (see isTrace)
      const data = checkTraceBody(body, contentType);
      const taken = { time: started, ...(profile.seconds !== undefined ? { durationMs: profile.seconds * 1000 } : {}), sampleCount: 0, data };
      return { ok: true, profile: scrapedOf(target, profile, taken), bytes: body.length, durationMs: Date.now() - started };
    }
    const checked = await checkProfileBody(body, { ...(options.limits ?? DEFAULT_PROFILE_LIMITS), max_decompressed_size: options.maxDecompressedSize }, contentType);
    const summary = checked.summary;
    const time = profileTime(summary.timeMs, started);
    const scraped = scrapedOf(target, profile, {
      time: time.time,
      ...(summary.timeMs !== undefined ? { bodyTime: summary.timeMs } : {}),
      ...(summary.durationMs !== undefined ? { durationMs: summary.durationMs } : {}),
      sampleCount: summary.sampleCount,
      data: checked.data,
    });
    return { ok: true, profile: scraped, bytes: body.length, durationMs: Date.now() - started, ...(time.ignored !== undefined ? { ignoredTimeMs: time.ignored } : {}) };
  } catch (err) {
    const durationMs = Date.now() - started;
    if (err instanceof ScrapeError) return { ok: false, result: err.result, reason: err.message, bytes: err.bytes, durationMs };
    if (err instanceof BodyError) return { ok: false, result: err.kind, reason: err.message, bytes: 0, durationMs };
    if (call.timedOut && !signal.aborted) {
      const why = held.waiting ? ': the answer came, but no concurrency slot was free to read it; raise scrape.concurrency' : '';
      return { ok: false, result: 'timeout', reason: `no complete answer within ${formatDuration(budget)} (${profile.seconds !== undefined ? `seconds ${profile.seconds} + ` : ''}timeout ${formatDuration(options.timeout)})${why}`, bytes: 0, durationMs };
    }
    if (signal.aborted) return { ok: false, result: 'timeout', reason: 'cancelled: the daemon is stopping or the target was removed', bytes: 0, durationMs };
    return { ok: false, result: 'network', reason: describeNetworkError(err), bytes: 0, durationMs };
  } finally {
    held.release?.();
    call.dispose();
  }
}

/** A scraped profile: what the body told (`taken`) with what its target and type say. */
function scrapedOf(target: Target, profile: TargetProfile, taken: Pick<ScrapedProfile, 'time' | 'bodyTime' | 'durationMs' | 'sampleCount' | 'data'>): ScrapedProfile {
  return {
    targetId: target.id,
    service: target.service,
    type: profile.type,
    labels: target.labels,
    ...taken,
    url: profile.url,
    ...(profile.delta ? { delta: true } : {}),
    ...ofTarget(target),
  };
}

/**
 * What every profile of a target carries about it, made once per target (a
 * reload builds new targets): the last profile of each target × type is held
 * for the status page, and each would otherwise hold its own copy.
 */
const targetFields = new WeakMap<Target, Pick<ScrapedProfile, 'targetTypes' | 'targetDeltaTypes'>>();
function ofTarget(target: Target): Pick<ScrapedProfile, 'targetTypes' | 'targetDeltaTypes'> {
  let fields = targetFields.get(target);
  if (!fields) {
    fields = { targetTypes: target.profiles.map((p) => p.type), ...deltaTypesOf(target) };
    targetFields.set(target, fields);
  }
  return fields;
}

/** The slot a CPU-style scrape took, for scrapeProfile to give back whatever happened. */
interface Held {
  release: (() => void) | undefined;
  waiting: boolean;
}

/**
 * A CPU-style scrape holds its connection for its whole window, and may run
 * beside the target's other scrapes: it gets a connection of its own from the
 * pool. The others take turns on the target's one connection.
 */
function dispatcherFor(profile: TargetProfile, client: TargetClient): Dispatcher {
  return profile.seconds === undefined ? (client.single ?? client.dispatcher) : client.dispatcher;
}

async function fetchBody(url: string, client: TargetClient, via: { dispatcher: Dispatcher; reset: boolean }, maxSize: number, signal: AbortSignal, slot: TakeSlot | undefined, held: Held, trace: boolean): Promise<{ body: Buffer; contentType: string | undefined }> {
  const wanted = trace ? 'Go execution trace' : 'pprof profile';
  let current = url;
  for (let hop = 0; ; hop++) {
    const res = await request(current, {
      method: 'GET',
      dispatcher: via.dispatcher,
      reset: via.reset,
      // a trace is taken as Go writes it: a proxy that gzipped it would hide its header
      headers: trace ? { ...client.headers } : { 'accept-encoding': 'gzip', ...client.headers },
      signal,
    });
    if (res.statusCode >= 300 && res.statusCode < 400 && res.statusCode !== 304) {
      await res.body.dump();
      current = followable(current, res.headers['location'], res.statusCode, hop);
      continue;
    }
    if (slot && !held.release) {
      held.waiting = true;
      try {
        held.release = await slot(signal);
      } catch (err) {
        res.body.destroy();
        throw err;
      }
      held.waiting = false;
    }
    const contentType = headerValue(res.headers['content-type']);
    if (res.statusCode < 200 || res.statusCode >= 300) {
      const snippet = await readSome(res.body, 512);
      const text = snippet.toString('utf8').trim().replace(/\s+/g, ' ');
      if (res.statusCode === 500 && /already in use/i.test(text)) {
        throw new ScrapeError('busy', `HTTP 500: ${JSON.stringify(text)}: another CPU profile of this process is running (another profiler, or a second scraper); this one is skipped`);
      }
      if (res.statusCode === 500 && /could not enable tracing/i.test(text)) {
        throw new ScrapeError('busy', `HTTP 500: ${JSON.stringify(text)}: another execution trace of this process is running (Go takes one at a time: another tracer, or a second scraper); this one is skipped`);
      }
      throw new ScrapeError('http_error', `HTTP ${res.statusCode}${text ? `: ${JSON.stringify(text.slice(0, 200))}` : ''}`);
    }
    const declared = Number(headerValue(res.headers['content-length']) ?? NaN);
    if (declared > maxSize) {
      res.body.destroy();
      throw new ScrapeError('too_large', `body of ${formatSize(declared)} (Content-Length) is over max_profile_size (${formatSize(maxSize)})`);
    }
    const body = await readLimited(res.body, maxSize);
    if (body.length === 0) throw new ScrapeError('invalid', `HTTP ${res.statusCode} with an empty body, not a ${wanted}`);
    if (contentType !== undefined && /text\/html|application\/json/i.test(contentType) && (trace || !(body[0] === 0x1f && body[1] === 0x8b))) {
      throw new ScrapeError('invalid', `answered ${contentType.split(';')[0]}, not a ${wanted}: it ${describeBody(body, contentType)}; is the path right?`);
    }
    return { body, contentType };
  }
}

function followable(from: string, location: string | string[] | undefined, status: number, hop: number): string {
  const loc = headerValue(location);
  if (loc === undefined) throw new ScrapeError('http_error', `HTTP ${status} redirect without a Location`);
  const next = new URL(loc, from);
  const origin = new URL(from);
  if (next.origin !== origin.origin) {
    throw new ScrapeError('redirect', `HTTP ${status} redirect to another host (${next.origin}${next.pathname}): not followed; point the target at the final address`);
  }
  // hop counts the redirects already followed: this one is number hop + 1
  if (hop >= MAX_REDIRECTS) throw new ScrapeError('redirect', `more than ${MAX_REDIRECTS} redirects`);
  return next.toString();
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

async function readLimited(body: Dispatcher.ResponseData['body'], max: number): Promise<Buffer> {
  const read = await readBodyUpTo(body, max);
  if ('over' in read) throw new ScrapeError('too_large', `body is over max_profile_size (${formatSize(max)}): stopped reading at ${formatSize(read.over)}`, read.over);
  return read.bytes;
}

async function readSome(body: Dispatcher.ResponseData['body'], max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body) {
      const buf = chunk as Buffer;
      chunks.push(buf);
      total += buf.length;
      if (total >= max) break;
    }
  } catch {
    // the status line is what matters
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks).subarray(0, max);
}

function describeNetworkError(err: unknown): string {
  const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException };
  const inner = e.cause ?? e;
  const code = inner.code ?? e.code;
  switch (code) {
    case 'ECONNREFUSED':
      return `connection refused (${inner.message.replace(/^connect /, '')}): nothing listens there; is the port right?`;
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return `connection reset by the target (${code})`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `host not found (${code}): ${inner.message}`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `host unreachable (${code})`;
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'connect timed out';
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
    case 'CERT_HAS_EXPIRED':
      return `TLS: ${inner.message} (${code}): set tls.ca_file, or tls.insecure_skip_verify for testing`;
    default:
      return `${code ? `${code}: ` : ''}${inner.message || String(err)}`;
  }
}

/** The target's `delta: true` types and their paths, when it has any (see ScrapedProfile.targetDeltaTypes). */
function deltaTypesOf(target: Target): { targetDeltaTypes?: Record<string, string> } {
  const deltas = target.profiles.filter((p) => p.delta);
  return deltas.length > 0 ? { targetDeltaTypes: Object.fromEntries(deltas.map((p) => [p.type, new URL(p.url).pathname])) } : {};
}
