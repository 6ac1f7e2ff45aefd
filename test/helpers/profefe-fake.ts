/**
 * A loopback profefe that speaks its write API and enforces its rules (see
 * profefe-contract.ts), recording each profile it accepts. Tests use it as
 * the repository on the far side of the daemon. Of the read API it answers
 * `GET /api/0/services` (the services it holds profiles of); find() and
 * merge() below stand for the rest.
 */
import {randomBytes} from 'node:crypto';
import {createServer} from 'node:http';
import type {IncomingHttpHeaders, IncomingMessage, ServerResponse} from 'node:http';
import type {AddressInfo} from 'node:net';
import {gunzipSync} from 'node:zlib';
import {Profile} from 'pprof-format';
import {Changes, waitUntil} from './wait.js';
import {parseCreatedAt, parseWriteParams, readBody, replyJson, replyNonWrite, routeProfefe} from './profefe-contract.js';
import type {ProfefeType} from './profefe-contract.js';

/** A profile the fake accepted. */
export interface ReceivedProfile {
  readonly service: string;
  readonly type: ProfefeType;
  /** As parsed from `labels`, in the order sent. */
  readonly labels: ReadonlyArray<readonly [string, string]>;
  /** The request body exactly as received. */
  readonly body: Buffer;
  /** Sample count of the decoded profile (0 only for type=trace, which is not decoded). */
  readonly sampleCount: number;
  /** The request URL (path and query) as sent. */
  readonly url: string;
  /** ms since the epoch. */
  readonly receivedAt: number;
  /** `created_at` as sent, when sent. */
  readonly createdAt?: string;
  /**
   * The time profefe files the profile under, ms since the epoch, as its
   * Collector.WriteProfile picks it (pkg/profefe/collector.go): the body's
   * time_nanos when positive (never looked at for type=trace), else
   * created_at, else the time it arrived.
   */
  readonly indexedAt: number;
  /** The order profefe gave it an ID in: 0, 1, 2, … (profefe's xid IDs grow with arrival). */
  readonly id: number;
}

/** A profile that reached the fake after one of its service filed under a later time. */
export interface OutOfOrder {
  readonly service: string;
  readonly type: ProfefeType;
  /** When profefe files it. */
  readonly indexedAt: number;
  /** The latest time among the profiles of its service that arrived before it. */
  readonly after: number;
  readonly url: string;
}

/** A GET /api/0/profiles query: service, optional type and labels, created_at_min/max (ms). */
export interface FindQuery {
  readonly service: string;
  readonly type?: ProfefeType;
  readonly labels?: Readonly<Record<string, string>>;
  readonly from: number;
  readonly to: number;
}

/** A request the fake refused, with the status and error it answered. */
export interface RejectedRequest {
  readonly method: string;
  readonly url: string;
  readonly status: number;
  readonly error: string;
  readonly receivedAt: number;
}

/** What a failure hook sees: the request, body read, before the fake's own rules. */
export interface FakeRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** 0 for the first request the fake got, then 1, 2, … */
  readonly seq: number;
}

/**
 * What a failure hook answers instead of the fake. `delayMs` holds the answer
 * back (for client timeouts); `{destroy: true}` drops the connection with no
 * answer (a network error).
 */
export type FakeFailure =
  | {status: number; body?: string; headers?: Record<string, string>; delayMs?: number}
  | {destroy: true; delayMs?: number};

export type FailureHook = (req: FakeRequest) => FakeFailure | undefined;

export interface ProfefeFake {
  /** Base URL, e.g. http://127.0.0.1:40123 (no trailing slash). */
  readonly url: string;
  /** Accepted profiles, in arrival order; the same array grows as more arrive. */
  readonly received: ReceivedProfile[];
  /** Refused requests (4xx/5xx from the fake's rules, not from the failure hook). */
  readonly rejected: RejectedRequest[];
  /**
   * What GET /api/0/profiles/merge would make of the accepted profiles of one
   * service and type whose labels include `labels` (profefe's Labels.Include,
   * pkg/profile/labels.go): merged profiles must have the same period type and
   * sample types (pprof's Profile.compatible, internal/pprof/profile/merge.go),
   * else profefe answers an error.
   */
  merge(service: string, type: ProfefeType, labels?: Readonly<Record<string, string>>): {ok: true; profiles: number} | {ok: false; error: string};
  /**
   * The profiles GET /api/0/profiles finds, as profefe's badger storage finds
   * them (findRawProfileIDs, scanIndexKeys and mergeJoinIDs in
   * pkg/storage/badger/storage.go): one index per service (or service and
   * type) and one per label, each ordered by (indexed time, ID), joined by
   * walking them side by side as if their IDs were sorted. They are sorted
   * only when each service's profiles arrived in time order; otherwise a
   * query with labels misses profiles that are there.
   */
  find(query: FindQuery): ReceivedProfile[];
  /**
   * Arrivals out of time order within their service: what makes find() miss
   * profiles. Real profefe says nothing; the fake lists them.
   */
  outOfOrder(): OutOfOrder[];
  /** Replaces the failure hook; undefined restores normal answers. */
  setFailure(f: FailureHook | undefined): void;
  /** Resolves once `count` profiles have been accepted; rejects after timeoutMs. */
  waitForProfiles(count: number, timeoutMs?: number): Promise<ReceivedProfile[]>;
  close(): Promise<void>;
}

export const FAKE_VERSION = {version: 'profefe-fake', commit: 'none', build_time: '1970-01-01T00:00:00Z'};

const GZIP_MAGIC = 0x1f8b;
// Past this a gzip body is treated as a bomb rather than a profile.
const MAX_DECOMPRESSED = 512 * 1024 * 1024;

/**
 * Decodes a body as profefe's parser would accept it: gzipped or raw pprof
 * protobuf whose samples each carry one value per sample type, with at least
 * one sample. Returns the sample count, or the reason it fails.
 */
export function checkProfileBody(body: Buffer): {ok: true; samples: number; timeNanos: bigint} | {ok: false; reason: string} {
  if (body.length === 0) return {ok: false, reason: 'empty input file'};
  let raw = body;
  if (body.length >= 2 && body.readUInt16BE(0) === GZIP_MAGIC) {
    try {
      raw = gunzipSync(body, {maxOutputLength: MAX_DECOMPRESSED});
    } catch (err) {
      return {ok: false, reason: `decompressing profile: ${(err as Error).message}`};
    }
  }
  let profile: Profile;
  try {
    profile = Profile.decode(raw);
  } catch (err) {
    return {ok: false, reason: `parsing profile: ${(err as Error).message}`};
  }
  const types = profile.sampleType.length;
  for (const s of profile.sample) {
    if (s.value.length !== types) {
      return {ok: false, reason: `mismatch: sample has ${s.value.length} values vs. ${types} types`};
    }
  }
  if (profile.sample.length === 0) return {ok: false, reason: 'profile is empty: no samples'};
  return {ok: true, samples: profile.sample.length, timeNanos: BigInt(profile.timeNanos)};
}

export async function startProfefeFake(opts: {host?: string} = {}): Promise<ProfefeFake> {
  const host = opts.host ?? '127.0.0.1';
  const received: ReceivedProfile[] = [];
  const rejected: RejectedRequest[] = [];
  let failure: FailureHook | undefined;
  let seq = 0;
  const arrivals = new Changes();
  const outOfOrder: OutOfOrder[] = [];
  const latest = new Map<string, number>();

  const reject = (req: IncomingMessage, res: ServerResponse, status: number, error: string): void => {
    rejected.push({method: req.method ?? '', url: req.url ?? '', status, error, receivedAt: Date.now()});
    replyJson(res, status, {error});
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const n = seq++;
    const body = await readBody(req);
    const hook = failure?.({method, url, headers: req.headers, body, seq: n});
    if (hook) {
      if (hook.delayMs) await new Promise((r) => setTimeout(r, hook.delayMs).unref());
      if ('destroy' in hook) {
        req.socket.destroy();
        return;
      }
      res.writeHead(hook.status, hook.headers ?? {});
      res.end(hook.body ?? '');
      return;
    }

    const route = routeProfefe(method, url);
    if (replyNonWrite(route, res, FAKE_VERSION, [...new Set(received.map((r) => r.service))])) return;
    if (route.kind !== 'write') return;
    const parsed = parseWriteParams(route.query);
    if (!parsed.ok) {
      reject(req, res, 400, `bad request: ${parsed.error}`);
      return;
    }
    const {service, type, labels, createdAt} = parsed.params;
    const receivedAt = Date.now();
    let indexedAt = createdAt === undefined ? receivedAt : (parseCreatedAt(createdAt) ?? receivedAt);
    let sampleCount = 0;
    // profefe stores trace bodies without parsing them.
    if (type !== 'trace') {
      const check = checkProfileBody(body);
      if (!check.ok) {
        // HandleCreateProfile (pkg/profefe/profiles_handler.go): a ProfileParserError is a 400
        reject(req, res, 400, `malformed profile (could not parse pprof profile: ${check.reason})`);
        return;
      }
      sampleCount = check.samples;
      if (check.timeNanos > 0n) indexedAt = Number(check.timeNanos / 1_000_000n);
    }
    const id = randomBytes(10).toString('hex');
    const before = latest.get(service);
    if (before !== undefined && indexedAt < before) outOfOrder.push({service, type, indexedAt, after: before, url});
    latest.set(service, Math.max(before ?? indexedAt, indexedAt));
    received.push({service, type, labels, body, sampleCount, url, receivedAt, indexedAt, id: received.length, ...(createdAt !== undefined ? {createdAt} : {})});
    replyJson(res, 200, {body: {id, type, service}});
    arrivals.notify();
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // A client that hangs up mid-body lands here; nothing is left to answer.
      if (!res.headersSent && !res.destroyed) replyJson(res, 500, {error: `fake: ${(err as Error).message}`});
    });
  });
  await new Promise<void>((resolve, rejectListen) => {
    server.once('error', rejectListen);
    server.listen(0, host, () => {
      server.off('error', rejectListen);
      resolve();
    });
  });
  const {port} = server.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  return {
    url: `http://${urlHost}:${port}`,
    received,
    rejected,
    setFailure(f) {
      failure = f;
    },
    merge(service, type, labels = {}) {
      const picked = received.filter((r) => {
        if (r.service !== service || r.type !== type) return false;
        const have = new Map(r.labels);
        return Object.entries(labels).every(([k, v]) => have.get(k) === v);
      });
      if (picked.length === 0) return {ok: false, error: 'nothing found'};
      const shape = (r: ReceivedProfile): string => {
        const p = Profile.decode(r.body[0] === 0x1f ? gunzipSync(r.body) : r.body);
        const name = (v: {type: number | bigint; unit: number | bigint} | undefined): string =>
          v === undefined ? '<nil>' : `${p.stringTable.strings[Number(v.type)] ?? ''}/${p.stringTable.strings[Number(v.unit)] ?? ''}`;
        return `period ${name(p.periodType)}; samples ${p.sampleType.map(name).join(' ')}`;
      };
      const first = shape(picked[0]!);
      for (const r of picked.slice(1)) {
        const other = shape(r);
        if (other !== first) return {ok: false, error: `incompatible profiles: ${first} and ${other}`};
      }
      return {ok: true, profiles: picked.length};
    },
    find({service, type, labels = {}, from, to}) {
      const inWindow = received.filter((r) => r.service === service && r.indexedAt >= from && r.indexedAt <= to);
      // each index: keys <index><value><created_at><id>, so (time, id) order
      const index = (keep: (r: ReceivedProfile) => boolean): number[] =>
        inWindow
          .filter(keep)
          .sort((a, b) => a.indexedAt - b.indexedAt || a.id - b.id)
          .map((r) => r.id);
      const lists = [index((r) => type === undefined || r.type === type)];
      for (const [k, v] of Object.entries(labels)) lists.push(index((r) => r.labels.some(([lk, lv]) => lk === k && lv === v)));
      let merged = lists[0]!;
      for (const next of lists.slice(1)) {
        const out: number[] = [];
        for (let l = 0, r = 0; l < merged.length && r < next.length; ) {
          const a = merged[l]!;
          const b = next[r]!;
          if (a === b) {
            out.push(a);
            l++;
            r++;
          } else if (a < b) l++;
          else r++;
        }
        merged = out;
      }
      return merged.map((id) => received[id]!);
    },
    outOfOrder() {
      return outOfOrder.slice();
    },
    waitForProfiles(count, timeoutMs = 10_000) {
      const what = (): string =>
        `${count} profiles at the profefe fake, got ${received.length}` +
        (rejected.length ? `; rejected: ${rejected.map((r) => `${r.status} ${r.error} (${r.url})`).join('; ')}` : '');
      return waitUntil(what, () => received.length >= count, {timeoutMs, wake: arrivals}).then(() => received.slice());
    },
    close() {
      return new Promise((resolve, rejectClose) => {
        server.close((err) => (err ? rejectClose(err) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}
