/**
 * profefe's write API as its collector enforces it, shared by the test fake
 * (test/helpers/profefe-fake.ts) and the benchmark sink (bench/sink.ts), so
 * both answer a request the same way.
 *
 * Ported from profefe's Go sources (pkg/profefe request/handler code,
 * pkg/profile labels and profile types) and the Go standard library pieces
 * they lean on (net/url query parsing and unescaping, http.ServeMux path
 * cleaning), because Node's URLSearchParams is more lenient than Go's
 * url.ParseQuery: a fake built on it would accept what profefe rejects.
 */
import type {IncomingMessage, ServerResponse} from 'node:http';

/** The types profefe knows; anything else is a 400. `allocs` is not one. */
export const PROFEFE_TYPES = ['cpu', 'heap', 'block', 'mutex', 'goroutine', 'threadcreate', 'other', 'trace'] as const;
export type ProfefeType = (typeof PROFEFE_TYPES)[number];

export const PROFILES_PATH = '/api/0/profiles';
export const VERSION_PATH = '/api/0/version';
export const SERVICES_PATH = '/api/0/services';

/** Go's url.EscapeError, with Go's message. */
export class GoEscapeError extends Error {
  override readonly name = 'GoEscapeError';
  constructor(readonly escape: string) {
    super(`invalid URL escape ${JSON.stringify(escape)}`);
  }
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}

/**
 * Go's url.QueryUnescape (mode 'query': '+' is a space) or url.PathUnescape
 * (mode 'path': '+' stays). A '%' not followed by two hex digits throws.
 * Works on bytes like Go, then reads them as UTF-8.
 */
export function goUnescape(s: string, mode: 'query' | 'path' = 'query'): string {
  if (!s.includes('%') && (mode === 'path' || !s.includes('+'))) return s;
  const input = Buffer.from(s, 'utf8');
  const out = Buffer.alloc(input.length);
  let n = 0;
  for (let i = 0; i < input.length; i++) {
    const c = input[i]!;
    if (c === 0x25) {
      const h1 = input[i + 1];
      const h2 = input[i + 2];
      if (h1 === undefined || h2 === undefined || !isHex(h1) || !isHex(h2)) {
        throw new GoEscapeError(input.subarray(i, i + 3).toString('utf8'));
      }
      out[n++] = Number.parseInt(String.fromCharCode(h1, h2), 16);
      i += 2;
    } else if (c === 0x2b && mode === 'query') {
      out[n++] = 0x20;
    } else {
      out[n++] = c;
    }
  }
  return out.toString('utf8', 0, n);
}

/**
 * Go's url.ParseQuery as r.URL.Query() uses it: pairs split on '&', a pair
 * holding ';' or a bad escape is dropped (Query() ignores the error), values
 * kept in order. `get` is Go's Values.Get: the first value, else ''.
 */
export class GoQuery {
  readonly values = new Map<string, string[]>();

  constructor(rawQuery: string) {
    for (const pair of rawQuery.split('&')) {
      if (pair === '' || pair.includes(';')) continue;
      const eq = pair.indexOf('=');
      const rawKey = eq < 0 ? pair : pair.slice(0, eq);
      const rawValue = eq < 0 ? '' : pair.slice(eq + 1);
      let key: string;
      let value: string;
      try {
        key = goUnescape(rawKey);
        value = goUnescape(rawValue);
      } catch {
        continue;
      }
      const list = this.values.get(key);
      if (list) list.push(value);
      else this.values.set(key, [value]);
    }
  }

  get(key: string): string {
    return this.values.get(key)?.[0] ?? '';
  }
}

/**
 * profefe's Labels.FromString: split on ',', each chunk on its first '=',
 * key and value trimmed of spaces then query-unescaped; an empty key is
 * skipped (before its value is looked at). Order is kept as sent; profefe
 * itself sorts by key when it stores them.
 */
export function parseProfefeLabels(s: string): Array<[string, string]> {
  const labels: Array<[string, string]> = [];
  if (s === '') return labels;
  for (const chunk of s.split(',')) {
    const eq = chunk.indexOf('=');
    const rawKey = eq < 0 ? chunk : chunk.slice(0, eq);
    const rawValue = eq < 0 ? '' : chunk.slice(eq + 1);
    const key = goUnescape(goTrimSpace(rawKey));
    if (key === '') continue;
    labels.push([key, goUnescape(goTrimSpace(rawValue))]);
  }
  return labels;
}

// Go's strings.TrimSpace: unicode.IsSpace, which (unlike JS's \s) has U+0085
// and lacks U+FEFF.
const GO_SPACE = '\\t\\n\\v\\f\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000';
const GO_TRIM = new RegExp(`^[${GO_SPACE}]+|[${GO_SPACE}]+$`, 'g');

export function goTrimSpace(s: string): string {
  return s.replace(GO_TRIM, '');
}

/** Go's path.Clean for a rooted path. */
export function goPathClean(p: string): string {
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return `/${out.join('/')}`;
}

/** http.ServeMux's cleanPath: path.Clean, keeping one trailing slash. */
export function goCleanPath(p: string): string {
  if (p === '') return '/';
  if (!p.startsWith('/')) p = `/${p}`;
  let np = goPathClean(p);
  if (p.endsWith('/') && np !== '/') {
    np = p.length === np.length + 1 && p.startsWith(np) ? p : `${np}/`;
  }
  return np;
}

export interface WriteParams {
  readonly service: string;
  readonly type: ProfefeType;
  readonly labels: Array<[string, string]>;
  /** created_at as sent (profefe's 2006-01-02T15:04:05), when sent. */
  readonly createdAt?: string;
}

/**
 * profefe's parseTime (pkg/profefe/request.go): time.Parse with the layout
 * "2006-01-02T15:04:05", so no zone (read as UTC), a year of exactly four
 * digits, and, as Go's parser allows after the seconds, an optional fraction
 * (`.123` or `,123`); the zero time (0001-01-01T00:00:00) is refused too.
 */
const CREATED_AT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})((?:[.,])\d+)?$/;

/** created_at as profefe reads it, in ms since the epoch (UTC); undefined when profefe answers 400. */
export function parseCreatedAt(s: string): number | undefined {
  const m = CREATED_AT.exec(s);
  if (!m) return undefined;
  const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || h > 23 || mi > 59 || se > 59) return undefined;
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, se, Math.floor(Number(`0.${(m[7] ?? '.0').slice(1)}`) * 1000));
  if (date.getUTCDate() !== d || date.getUTCMonth() !== mo - 1) return undefined;
  if (y === 1 && mo === 1 && d === 1 && h === 0 && mi === 0 && se === 0 && !/[1-9]/.test(m[7] ?? '')) return undefined;
  return date.getTime();
}

/**
 * Validates a write's query as profefe's parseWriteProfileParams does and
 * returns its parameters, or the message profefe puts after "bad request: ".
 */
export function parseWriteParams(q: GoQuery): {ok: true; params: WriteParams} | {ok: false; error: string} {
  const service = q.get('service');
  if (service === '') return {ok: false, error: 'missing service'};
  const rawType = q.get('type');
  const trimmedType = goTrimSpace(rawType);
  const type = PROFEFE_TYPES.find((t) => t === trimmedType);
  if (rawType !== '' && type === undefined) {
    return {ok: false, error: `bad profile type ${JSON.stringify(rawType)}: bad profile type unknown`};
  }
  let labels: Array<[string, string]>;
  try {
    labels = parseProfefeLabels(q.get('labels'));
  } catch (err) {
    return {ok: false, error: `bad labels ${JSON.stringify(q.get('labels'))}: ${(err as Error).message}`};
  }
  const createdAt = q.get('created_at');
  if (createdAt !== '' && parseCreatedAt(createdAt) === undefined) {
    return {ok: false, error: `bad "created_at" ${JSON.stringify(createdAt)}: time in unsupported format ${JSON.stringify(createdAt)}`};
  }
  if (type === undefined) return {ok: false, error: 'unknown profile type unknown'};
  const params: WriteParams = createdAt === '' ? {service, type, labels} : {service, type, labels, createdAt};
  return {ok: true, params};
}

/** What a request to profefe's router comes to, before its body is read. */
export type ProfefeRoute =
  | {kind: 'redirect'; location: string}
  | {kind: 'bad-path'}
  | {kind: 'not-found'}
  | {kind: 'version'}
  | {kind: 'services'}
  | {kind: 'method-not-allowed'; allow: string}
  | {kind: 'write'; query: GoQuery};

/**
 * Routes as profefe's mux does: ServeMux redirects an unclean path (a
 * doubled slash from `url + '/api/...'` gets a 301 there, which a client that
 * does not follow redirects sees as a failure); /api/0/profiles with or
 * without a trailing slash is the write endpoint for POST.
 *
 * Deliberate difference: real profefe answers 200 with an empty body for an
 * unknown /api/0/ path or method; here those are 404 and 405, because a 200
 * would hide a client's wrong path or method from the tests.
 */
export function routeProfefe(method: string, rawUrl: string): ProfefeRoute {
  const q = rawUrl.indexOf('?');
  const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const rawQuery = q < 0 ? '' : rawUrl.slice(q + 1);
  let path: string;
  try {
    path = goUnescape(rawPath, 'path');
  } catch {
    return {kind: 'bad-path'};
  }
  const clean = goCleanPath(path);
  if (clean !== path && method !== 'CONNECT') {
    return {kind: 'redirect', location: rawQuery === '' ? clean : `${clean}?${rawQuery}`};
  }
  if (clean === VERSION_PATH) return {kind: 'version'};
  // ServicesHandler answers any method (pkg/profefe/services_handler.go)
  if (clean === SERVICES_PATH) return {kind: 'services'};
  if (goPathClean(clean) !== PROFILES_PATH) return {kind: 'not-found'};
  if (method !== 'POST') return {kind: 'method-not-allowed', allow: 'POST'};
  return {kind: 'write', query: new GoQuery(rawQuery)};
}

/** profefe's JSON reply: {"code":N,"body":…} or {"code":N,"error":"…"}, newline-terminated like Go's json.Encoder. */
export function replyJson(res: ServerResponse, status: number, payload: {body: unknown} | {error: string}, headers: Record<string, string> = {}): void {
  const doc = 'error' in payload ? {code: status, error: payload.error} : {code: status, body: payload.body};
  const text = `${JSON.stringify(doc)}\n`;
  res.writeHead(status, {'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers});
  res.end(text);
}

/**
 * Answers every route but 'write' (which needs the body) the way profefe
 * does; returns true when it has replied. `services` are the services
 * profefe holds profiles of (none: a sink that keeps nothing).
 */
export function replyNonWrite(route: ProfefeRoute, res: ServerResponse, version: unknown, services: readonly string[] = []): route is Exclude<ProfefeRoute, {kind: 'write'}> {
  switch (route.kind) {
    case 'redirect': {
      const body = `<a href="${route.location}">Moved Permanently</a>.\n\n`;
      res.writeHead(301, {location: route.location, 'content-type': 'text/html; charset=utf-8'});
      res.end(body);
      return true;
    }
    case 'bad-path':
      res.writeHead(400, {'content-type': 'text/plain; charset=utf-8', connection: 'close'});
      res.end('400 Bad Request');
      return true;
    case 'not-found':
      res.writeHead(404, {'content-type': 'text/plain; charset=utf-8'});
      res.end('404 page not found\n');
      return true;
    case 'version':
      replyJson(res, 200, {body: version});
      return true;
    case 'services':
      // Querier.ListServices sorts them; badger's ListServices finds none as ErrNotFound (404)
      if (services.length === 0) replyJson(res, 404, {error: 'nothing found'});
      else replyJson(res, 200, {body: [...services].sort()});
      return true;
    case 'method-not-allowed':
      replyJson(res, 405, {error: 'method not allowed'}, {allow: route.allow});
      return true;
    case 'write':
      return false;
  }
}

/** Reads a request body whole; rejects on a client abort. */
export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Drains a body while counting its bytes, without keeping it. */
export function countBody(req: IncomingMessage): Promise<number> {
  return new Promise((resolve, reject) => {
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
    });
    req.on('end', () => resolve(n));
    req.on('error', reject);
  });
}
