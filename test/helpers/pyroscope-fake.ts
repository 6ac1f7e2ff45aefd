/**
 * A loopback Grafana Pyroscope that speaks the push API the way Pyroscope's
 * distributor takes it: `POST /push.v1.PusherService/Push`, a Connect unary
 * call with a protobuf PushRequest (api/push/v1/push.proto), labels checked
 * as pkg/validation.ValidateLabels checks them, each raw profile decoded as
 * pprof. Errors are answered as Connect does: a JSON {code, message} with the
 * matching HTTP status.
 *
 * It also answers one query of Pyroscope's querier API, from what it took:
 * `POST /querier.v1.QuerierService/LabelValues` with a JSON
 * types.v1.LabelValuesRequest (api/types/v1/types.proto), as an operator
 * asks with curl, answered as Pyroscope's query frontend answers it
 * (pkg/frontend/readpath/queryfrontend/query_label_values.go): start and end
 * (ms) are required, `name` too; `matchers` are selectors such as
 * `{service_name="checkout"}` (only `=` here); the values of the label on the
 * series pushed in [start, end] (by the profile's own time), sorted, as
 * `{"names": […]}`, or `{}` when there are none (protojson leaves an empty
 * list out). Labels Pyroscope derives at ingestion (`__profile_type__`,
 * `__type__`, …) are not known here.
 */
import {createServer} from 'node:http';
import type {IncomingHttpHeaders, IncomingMessage, ServerResponse} from 'node:http';
import type {AddressInfo} from 'node:net';
import {gunzipSync} from 'node:zlib';
import {Profile} from 'pprof-format';
import {parseConfig} from '../../src/config/index.js';
import type {PyroscopeConfig} from '../../src/config/index.js';
import {Changes, waitUntil} from './wait.js';

export const PUSH_PATH = '/push.v1.PusherService/Push';
export const LABEL_VALUES_PATH = '/querier.v1.QuerierService/LabelValues';

export interface ReceivedSeries {
  /** Labels in the order sent. */
  readonly labels: ReadonlyArray<readonly [string, string]>;
  readonly label: (name: string) => string | undefined;
  /** raw_profile exactly as sent. */
  readonly raw: Buffer;
  readonly profile: Profile;
  readonly id: string;
  readonly headers: IncomingHttpHeaders;
  readonly receivedAt: number;
}

export interface PyroscopeRejection {
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

export type PyroscopeFailure = {status: number; body?: string; headers?: Record<string, string>; delayMs?: number} | {destroy: true};

export interface PyroscopeFake {
  readonly url: string;
  readonly received: ReceivedSeries[];
  readonly rejected: PyroscopeRejection[];
  /** Requests seen (accepted, refused or failed by the hook). */
  readonly requests: () => number;
  setFailure(hook: ((seq: number) => PyroscopeFailure | undefined) | undefined): void;
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedSeries[]>;
  close(): Promise<void>;
}

export interface PyroscopeFakeOptions {
  /** Multi-tenant mode: X-Scope-OrgID must be this. */
  tenant?: string;
  /** validation.reject-older-than (default 1 h; 0: none). */
  rejectOlderThanMs?: number;
  /** validation.reject-newer-than (default 10 min; 0: none). */
  rejectNewerThanMs?: number;
  /** The server's clock (default Date.now). */
  now?: () => number;
  /** validation.max-label-names-per-series (default 30; 0: none). */
  maxLabelNamesPerSeries?: number;
  /** validation.disable-label-sanitization set to false (the default is true: any non-empty UTF-8 name). */
  labelSanitization?: boolean;
  /** validation.max-profile-size-bytes, uncompressed (default 4 MiB; 0: none). */
  maxProfileSizeBytes?: number;
  /** validation.max-profile-stacktrace-samples (default 16000; 0: none). */
  maxProfileStacktraceSamples?: number;
  /** Authorization must be exactly this. */
  authorization?: string;
}

// --- a strict protobuf reader for the push messages ---

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}
  get done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): number {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.buf[this.pos++];
      if (b === undefined) throw new Error('truncated varint');
      v += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return v;
      scale *= 128;
    }
    throw new Error('varint too long');
  }
  field(): {field: number; wire: number} {
    const key = this.varint();
    return {field: Math.floor(key / 8), wire: key % 8};
  }
  bytes(): Buffer {
    const len = this.varint();
    if (this.pos + len > this.buf.length) throw new Error(`length ${len} runs past the message`);
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.pos += 8;
    else if (wire === 2) this.bytes();
    else if (wire === 5) this.pos += 4;
    else throw new Error(`wire type ${wire}`);
  }
}

function utf8(b: Buffer, what: string): string {
  const s = b.toString('utf8');
  if (!Buffer.from(s, 'utf8').equals(b)) throw new Error(`${what} is not valid UTF-8`);
  return s;
}

interface RawSeries {
  labels: [string, string][];
  samples: {raw: Buffer; id: string}[];
}

export function decodePushRequest(body: Buffer): RawSeries[] {
  const series: RawSeries[] = [];
  const r = new Reader(body);
  while (!r.done) {
    const {field, wire} = r.field();
    if (field !== 1 || wire !== 2) {
      r.skip(wire);
      continue;
    }
    const s: RawSeries = {labels: [], samples: []};
    const sr = new Reader(r.bytes());
    while (!sr.done) {
      const f = sr.field();
      if (f.wire !== 2) throw new Error(`RawProfileSeries field ${f.field} has wire type ${f.wire}`);
      const inner = new Reader(sr.bytes());
      if (f.field === 1) {
        let name = '';
        let value = '';
        while (!inner.done) {
          const lf = inner.field();
          if (lf.wire !== 2) throw new Error('LabelPair field with wrong wire type');
          const b = inner.bytes();
          if (lf.field === 1) name = utf8(b, 'label name');
          else if (lf.field === 2) value = utf8(b, 'label value');
        }
        s.labels.push([name, value]);
      } else if (f.field === 2) {
        let raw: Buffer = Buffer.alloc(0);
        let id = '';
        while (!inner.done) {
          const rf = inner.field();
          if (rf.wire !== 2) throw new Error('RawSample field with wrong wire type');
          const b = inner.bytes();
          if (rf.field === 1) raw = b;
          else if (rf.field === 2) id = utf8(b, 'ID');
        }
        s.samples.push({raw, id});
      }
    }
    series.push(s);
  }
  return series;
}

// pkg/validation/validate.go ValidateLabels: the metric name passes
// model.UTF8Validation.IsValidMetricName (any non-empty UTF-8; the body is UTF-8 already).
const isMetricName = (name: string): boolean => name !== '';
// SanitizeLegacyLabelName: with sanitisation on, `[a-zA-Z_][a-zA-Z0-9_.]*`, dots becoming `_`
const LEGACY_LABEL_NAME = /^[a-zA-Z_.][a-zA-Z0-9_.]*$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

class Invalid extends Error {}

/**
 * What Pyroscope's distributor would refuse about one series, or undefined
 * (pkg/validation/validate.go ValidateLabels; max_label_names_per_series
 * defaults to 30 and disable_label_sanitization to true in limits.go). With
 * sanitisation off a label name is any non-empty UTF-8 string
 * (model.UTF8Validation); with it on, SanitizeLegacyLabelName's rule holds.
 */
export function checkSeries(s: RawSeries, opts: {maxLabelNames?: number; labelSanitization?: boolean} = {}): string | undefined {
  const maxLabelNames = opts.maxLabelNames ?? 30;
  if (s.labels.length === 0) return 'error at least one label pair is required per profile';
  if (maxLabelNames > 0 && s.labels.length > maxLabelNames) return `profile series has ${s.labels.length} label names; limit ${maxLabelNames}`;
  const get = (n: string): string | undefined => s.labels.find(([k]) => k === n)?.[1];
  if (!isMetricName(get('__name__') ?? '')) return 'invalid labels: invalid metric name';
  if (!get('service_name')) return 'invalid labels: service name is not provided';
  const names = new Map<string, string>();
  for (const [k, v] of s.labels) {
    if (Buffer.byteLength(k) > 1024) return `label name too long: '${k}'`;
    if (Buffer.byteLength(v) > 2048) return `label value too long: '${v}'`;
    if (k === '' || (opts.labelSanitization === true && !LEGACY_LABEL_NAME.test(k))) return `invalid label name '${k}'`;
    if (names.has(k)) return `duplicate label name: '${k}'`;
    names.set(k, v);
  }
  if (opts.labelSanitization === true) {
    const stored = new Map<string, string>();
    for (const [k, v] of s.labels) {
      const sanitized = k.replaceAll('.', '_');
      const other = stored.get(sanitized);
      if (other !== undefined && other !== v) return `duplicate label name '${sanitized}' after label name sanitization from '${k}'`;
      stored.set(sanitized, v);
    }
  }
  if (s.samples.length === 0) return 'no samples';
  return undefined;
}

/**
 * pkg/pprof/split VisitSampleSeries: the samples of each set of string labels
 * (span_id and profile_id aside) form a series of their own, the series
 * labels plus theirs (a name the series has keeps the series' value), each
 * validated as a series (ValidateLabels).
 */
export function checkSampleSeries(s: RawSeries, profile: Profile, opts: {maxLabelNames?: number; labelSanitization?: boolean} = {}): string | undefined {
  const strings = profile.stringTable.strings;
  const seen = new Set<string>();
  for (const sample of profile.sample) {
    const labels = new Map(s.labels);
    for (const l of sample.label) {
      const name = strings[Number(l.key)] ?? '';
      const value = Number(l.str) > 0 ? (strings[Number(l.str)] ?? '') : '';
      if (value === '' || name === 'span_id' || name === 'profile_id' || labels.get(name)) continue;
      labels.set(name, value);
    }
    if (labels.size === s.labels.length) continue;
    const key = JSON.stringify([...labels]);
    if (seen.has(key)) continue;
    seen.add(key);
    const problem = checkSeries({...s, labels: [...labels]}, opts);
    if (problem) return problem;
  }
  return undefined;
}

/**
 * pkg/validation/validate.go ValidateProfile: a profile with a TimeNanos must
 * lie in the ingestion window, after now - reject_older_than and before now +
 * reject_newer_than (limits.go: 1h and 10m by default); without one it is
 * dated at arrival.
 */
export function ingestionWindowProblem(timeNanos: bigint, nowMs: number, olderThanMs = 3_600_000, newerThanMs = 600_000): string | undefined {
  if (timeNanos <= 0n) return undefined;
  const t = Number(timeNanos / 1_000_000n);
  if ((olderThanMs === 0 || t > nowMs - olderThanMs) && (newerThanMs === 0 || t < nowMs + newerThanMs)) return undefined;
  return `profile is outside of ingestion window (profile timestamp: ${new Date(t).toISOString()}, the ingestion window starts at ${new Date(nowMs - olderThanMs).toISOString()} and ends at ${new Date(nowMs + newerThanMs).toISOString()})`;
}

/**
 * pkg/validation/validate.go ValidateProfile, with limits.go's defaults: the
 * uncompressed profile at most max_profile_size_bytes (4 MiB), at most
 * max_profile_stacktrace_samples samples (16000); over either, the whole
 * profile is refused (only stack depth and symbol length are truncated).
 */
function decodeProfile(raw: Buffer, maxSize = 4 * 1024 ** 2, maxSamples = 16_000): Profile {
  const bytes = raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw;
  if (maxSize > 0 && bytes.length > maxSize) throw new Invalid(`uncompressed profile payload size exceeds limit of ${maxSize} B`);
  const p = Profile.decode(bytes);
  if (maxSamples > 0 && p.sample.length > maxSamples) throw new Invalid(`exceeds the samples count limit (max_profile_stacktrace_samples, actual: ${p.sample.length}, limit: ${maxSamples})`);
  for (const t of p.sampleType) {
    if ((p.stringTable.strings[Number(t.type)] ?? '').includes('-')) throw new Invalid('sample type contains -');
  }
  for (const l of p.location) if (Number(l.id) === 0) throw new Invalid('location id is 0');
  for (const f of p.function) if (Number(f.id) === 0) throw new Invalid('function id is 0');
  for (const s of p.sample) if (s.value.length !== p.sampleType.length) throw new Invalid('sample value count does not match sample types');
  return p;
}

const CONNECT_STATUS: Record<string, number> = {invalid_argument: 400, unauthenticated: 401, not_found: 404, unimplemented: 404, resource_exhausted: 429};

export async function startPyroscopeFake(opts: PyroscopeFakeOptions = {}): Promise<PyroscopeFake> {
  const received: ReceivedSeries[] = [];
  const rejected: PyroscopeRejection[] = [];
  let hook: ((seq: number) => PyroscopeFailure | undefined) | undefined;
  let seq = 0;
  const arrivals = new Changes();

  const refuse = (res: ServerResponse, code: string, message: string): void => {
    const status = CONNECT_STATUS[code] ?? 500;
    rejected.push({status, code, message});
    res.writeHead(status, {'content-type': 'application/json'});
    res.end(JSON.stringify({code, message}));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    // a query, not a push: not counted in requests(), never failed by the hook
    if (req.url === LABEL_VALUES_PATH) return answerLabelValues(req, res, body, received);
    // counted whether or not a hook is set (`hook?.(seq++)` would count only then)
    const n = seq++;
    const failure = hook?.(n);
    if (failure) {
      if ('destroy' in failure) {
        req.socket.destroy();
        return;
      }
      if (failure.delayMs) await new Promise((r) => setTimeout(r, failure.delayMs).unref());
      res.writeHead(failure.status, failure.headers ?? {});
      res.end(failure.body ?? '');
      return;
    }
    if (req.method !== 'POST' || req.url !== PUSH_PATH) return refuse(res, 'unimplemented', `${req.method} ${req.url}: not a push endpoint`);
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim();
    if (type !== 'application/proto') {
      res.writeHead(415, {'accept-post': 'application/proto, application/json'});
      res.end();
      rejected.push({status: 415, code: 'unsupported media type', message: type ?? ''});
      return;
    }
    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding !== 'identity') return refuse(res, 'unimplemented', `content-encoding ${encoding} not supported`);
    const version = req.headers['connect-protocol-version'];
    if (version !== undefined && version !== '1') return refuse(res, 'invalid_argument', `connect-protocol-version must be "1", got ${String(version)}`);
    if (opts.tenant !== undefined && req.headers['x-scope-orgid'] !== opts.tenant) return refuse(res, 'unauthenticated', 'no org id');
    if (opts.authorization !== undefined && req.headers['authorization'] !== opts.authorization) return refuse(res, 'unauthenticated', 'bad credentials');
    let series: RawSeries[];
    try {
      series = decodePushRequest(body);
    } catch (err) {
      return refuse(res, 'invalid_argument', `decoding PushRequest: ${(err as Error).message}`);
    }
    const accepted: ReceivedSeries[] = [];
    for (const s of series) {
      const problem = checkSeries(s, {...(opts.maxLabelNamesPerSeries !== undefined ? {maxLabelNames: opts.maxLabelNamesPerSeries} : {}), ...(opts.labelSanitization !== undefined ? {labelSanitization: opts.labelSanitization} : {})});
      if (problem) return refuse(res, 'invalid_argument', problem);
      for (const sample of s.samples) {
        if (!UUID.test(sample.id)) return refuse(res, 'invalid_argument', `ID ${JSON.stringify(sample.id)} is not a UUID`);
        let profile: Profile;
        try {
          profile = decodeProfile(sample.raw, opts.maxProfileSizeBytes, opts.maxProfileStacktraceSamples);
        } catch (err) {
          return refuse(res, 'invalid_argument', `failed to parse profile: ${(err as Error).message}`);
        }
        const split = checkSampleSeries(s, profile, {...(opts.maxLabelNamesPerSeries !== undefined ? {maxLabelNames: opts.maxLabelNamesPerSeries} : {}), ...(opts.labelSanitization !== undefined ? {labelSanitization: opts.labelSanitization} : {})});
        if (split) return refuse(res, 'invalid_argument', split);
        const late = ingestionWindowProblem(BigInt(profile.timeNanos), (opts.now ?? Date.now)(), opts.rejectOlderThanMs, opts.rejectNewerThanMs);
        if (late) return refuse(res, 'invalid_argument', late);
        const labels = s.labels;
        accepted.push({labels, label: (n) => labels.find(([k]) => k === n)?.[1], raw: sample.raw, profile, id: sample.id, headers: req.headers, receivedAt: Date.now()});
      }
    }
    received.push(...accepted);
    res.writeHead(200, {'content-type': 'application/proto'});
    res.end();
    arrivals.notify();
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) refuse(res, 'internal', (err as Error).message);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const {port} = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    rejected,
    requests: () => seq,
    setFailure(h) {
      hook = h;
    },
    waitFor(count, timeoutMs = 15_000) {
      const what = (): string => `${count} profiles at the pyroscope fake, got ${received.length} (refused: ${JSON.stringify(rejected.slice(-3))})`;
      return waitUntil(what, () => received.length >= count, {timeoutMs, wake: arrivals}).then(() => received.slice());
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** Connect's error answer, for a query (a refused push is recorded in `rejected` too). */
function queryError(res: ServerResponse, code: string, message: string): void {
  res.writeHead(CONNECT_STATUS[code] ?? 500, {'content-type': 'application/json'});
  res.end(JSON.stringify({code, message}));
}

/** `{name="value", …}`: the equality matchers of one selector; undefined for anything else. */
function parseSelector(selector: string): [string, string][] | undefined {
  const inner = /^\s*\{(.*)\}\s*$/s.exec(selector)?.[1];
  if (inner === undefined) return undefined;
  const out: [string, string][] = [];
  const matcher = /\s*([a-zA-Z_][a-zA-Z0-9_.]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)/y;
  while (matcher.lastIndex < inner.length) {
    const m = matcher.exec(inner);
    if (!m) return undefined;
    out.push([m[1]!, JSON.parse(`"${m[2]!}"`) as string]);
  }
  return out;
}

function answerLabelValues(req: IncomingMessage, res: ServerResponse, body: Buffer, received: readonly ReceivedSeries[]): void {
  if (req.method !== 'POST') return queryError(res, 'unimplemented', `${req.method} ${req.url}: this fake takes the Connect POST form only`);
  if ((req.headers['content-type'] ?? '').split(';')[0]?.trim() !== 'application/json') return queryError(res, 'unimplemented', 'this fake answers the JSON codec only: send Content-Type: application/json');
  let msg: {name?: unknown; matchers?: unknown; start?: unknown; end?: unknown};
  try {
    msg = JSON.parse(body.toString('utf8')) as typeof msg;
  } catch (err) {
    return queryError(res, 'invalid_argument', `unmarshal message: ${(err as Error).message}`);
  }
  // int64 fields: protojson takes a number or a decimal string
  const int64 = (v: unknown): number => (typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : 0);
  const start = int64(msg.start);
  const end = int64(msg.end);
  if (start === 0 || end === 0) return queryError(res, 'invalid_argument', 'missing time range in the query');
  if (start > end) return queryError(res, 'invalid_argument', 'query start time is after end time');
  if (typeof msg.name !== 'string' || msg.name === '') return queryError(res, 'invalid_argument', 'name is required');
  // every matcher of every selector must hold: the query frontend joins them into one selector (compat.go)
  const matchers: [string, string][] = [];
  for (const m of Array.isArray(msg.matchers) ? (msg.matchers as unknown[]) : []) {
    const parsed = typeof m === 'string' ? parseSelector(m) : undefined;
    if (!parsed) return queryError(res, 'invalid_argument', `parsing label selector: failed to parse label selector ${JSON.stringify(m)} (this fake takes {name="value", …} only)`);
    matchers.push(...parsed);
  }
  const name = msg.name;
  const values = new Set<string>();
  for (const s of received) {
    const timeNanos = BigInt(s.profile.timeNanos);
    const at = timeNanos > 0n ? Number(timeNanos / 1_000_000n) : s.receivedAt;
    if (at < start || at > end) continue;
    if (!matchers.every(([k, v]) => (s.label(k) ?? '') === v)) continue;
    const value = s.label(name);
    if (value !== undefined && value !== '') values.add(value);
  }
  res.writeHead(200, {'content-type': 'application/json'});
  res.end(JSON.stringify(values.size > 0 ? {names: [...values].sort()} : {}));
}

/** A pyroscope repository block with the schema's defaults, for tests that build the repository directly. */
export function pyroscopeConfig(url: string, over: Partial<PyroscopeConfig> = {}): PyroscopeConfig {
  const parsed = parseConfig('repositories:\n  - pyroscope: {url: "http://127.0.0.1:1"}\n', 'test.yaml', {baseDir: '/'});
  const defaults = parsed.config.repositories[0]?.pyroscope;
  if (!defaults) throw new Error('the schema gave no pyroscope block');
  return {...defaults, url, queue: {max_size: 1e9, max_age: 1e9}, retry: {initial_backoff: 1000, max_backoff: 120_000}, timeout: 5000, ...over};
}
