import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { request } from 'undici';
import { DEFAULT_PROFILE_LIMITS } from '../config/index.js';
import type { ProfileLimits, PyroscopeConfig } from '../config/index.js';
import type { Metrics } from '../metrics.js';
import { openProfile } from '../profiles/decode.js';
import { DeltaStore } from '../profiles/delta.js';
import type { ScrapedProfile } from '../profiles/profile.js';
import { createTargetClient } from '../scrape/clients.js';
import { resultOfError, resultOfStatus } from './http-result.js';
import type { Prepared, Preparing } from './queue.js';
import type { Repository, SendResult } from './repository.js';

// Grafana Pyroscope (self-hosted or Grafana Cloud Profiles) through its push
// API: `POST {url}/push.v1.PusherService/Push`, a Connect unary call over
// HTTP/1.1 with a protobuf body (application/proto, not compressed). Each
// profile is one series whose labels travel as name/value pairs, so:
//   - the profile name (`__name__`: process_cpu, memory, block, mutex,
//     goroutine, …) is set here, from the profile's sample types and our type
//     name. The legacy /ingest endpoint guesses it from the sample types
//     alone and files Go's block profile (contentions/delay) as mutex unless
//     a sample_type_config part says otherwise;
//   - service names and label values are sent as they are (UTF-8); /ingest's
//     `name=app{k=v}` syntax cannot carry `,`, `}` or `=` in values, nor most
//     characters in the service name;
//   - `__delta__="false"` tells Pyroscope that cumulative types arrive as
//     deltas already (computed here, see prepare()).
// It is also the API Grafana Alloy's pyroscope.write uses.

export const PUSH_PATH = '/push.v1.PusherService/Push';

/** Label names Pyroscope uses itself; a target label of that name is renamed. */
const RESERVED = ['__name__', '__delta__', 'service_name'];

/** How long seeing a target's heap profile keeps its allocs profile from Pyroscope. */
const HEAP_SEEN_MS = 10 * 60_000;

export interface PyroscopeDeps {
  readonly logger?: Logger | undefined;
  readonly metrics?: Metrics | undefined;
  /** The repository this one replaces on a reload: its delta baselines carry over. */
  readonly previous?: Repository | undefined;
  /** The structure limits in force; queued profiles are decoded under them too. */
  readonly profileLimits?: (() => ProfileLimits) | undefined;
}

export interface PyroscopeRepository extends Repository, Preparing {
  readonly deltas: DeltaStore;
}

/**
 * A label name as Pyroscope accepts it (`[a-zA-Z_][a-zA-Z0-9_]*`, and not
 * starting with `__`, which Pyroscope keeps for itself).
 */
export function sanitizeLabelName(name: string): string {
  let n = name.replace(/[^a-zA-Z0-9_]/g, '_');
  if (n === '' || /^[0-9]/.test(n)) n = `_${n}`;
  if (n.startsWith('__')) n = n.replace(/^_+/, '_');
  return n;
}

/**
 * The series labels for a profile. Target labels come in name order; a name
 * that sanitises to one already taken (a reserved name, or an earlier label)
 * gets `_2`, `_3`, … so no value overwrites another. Empty values are left
 * out (Pyroscope, like Prometheus, treats an empty value as no label).
 */
export function pyroscopeLabels(
  profileName: string,
  service: string,
  labels: Readonly<Record<string, string>>,
  onRename?: (from: string, to: string) => void,
): [string, string][] {
  const out: [string, string][] = [
    ['__name__', profileName],
    ['__delta__', 'false'],
    ['service_name', service],
  ];
  const taken = new Set(RESERVED);
  for (const key of Object.keys(labels).sort()) {
    const value = labels[key] ?? '';
    if (value === '') continue;
    let name = sanitizeLabelName(key);
    if (taken.has(name)) {
      let i = 2;
      while (taken.has(`${name}_${i}`)) i++;
      name = `${name}_${i}`;
    }
    if (name !== key) onRename?.(key, name);
    taken.add(name);
    out.push([name, value]);
  }
  return out;
}

/**
 * Names of the sample types of a pprof profile (gzipped or not), read without
 * decoding the rest, once it has passed the limits. Throws a ProfileError.
 */
export function sampleTypeNames(data: Uint8Array, limits: ProfileLimits = DEFAULT_PROFILE_LIMITS): string[] {
  const buf = openProfile(data, limits).raw;
  const strings: string[] = [];
  const typeIndexes: number[] = [];
  let pos = 0;
  const varint = (): number => {
    let v = 0;
    let scale = 1;
    for (;;) {
      const b = buf[pos++];
      if (b === undefined) throw new Error('truncated varint');
      v += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return v;
      scale *= 128;
    }
  };
  while (pos < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (wire === 0) varint();
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const len = varint();
      const end = pos + len;
      if (field === 6) strings.push(buf.toString('utf8', pos, end));
      else if (field === 1) {
        // ValueType { int64 type = 1; int64 unit = 2; }
        const save = pos;
        while (pos < end) {
          const k = varint();
          const v = varint();
          if (k === 8) typeIndexes.push(v);
        }
        pos = save;
      }
      pos = end;
    } else throw new Error(`unexpected wire type ${wire}`);
  }
  return typeIndexes.map((i) => strings[i] ?? '');
}

/**
 * Pyroscope's profile name for one of ours. It follows Pyroscope's own reading
 * of Go sample types; block and mutex share theirs, so our type name decides.
 */
export function profileNameOf(type: string, sampleTypes: readonly string[], url = ''): string {
  if (sampleTypes.includes('wall')) return 'wall';
  if (sampleTypes.some((t) => t === 'samples' || t.includes('cpu'))) return 'process_cpu';
  if (sampleTypes.some((t) => t.startsWith('alloc_') || t.startsWith('inuse_') || t === 'space' || t === 'objects')) return 'memory';
  if (sampleTypes.includes('contentions') || sampleTypes.includes('delay')) return /mutex/i.test(type) || /mutex/i.test(url) ? 'mutex' : 'block';
  if (sampleTypes.includes('goroutine') || sampleTypes.includes('goroutines')) return 'goroutine';
  const name = type.replace(/[^a-zA-Z0-9_:]/g, '_');
  return /^[a-zA-Z_:]/.test(name) ? name : `_${name}`;
}

// --- protobuf encoding of push.v1.PushRequest (api/push/v1/push.proto) ---

function varintBytes(n: number): number[] {
  const out: number[] = [];
  while (n > 127) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

function lenField(field: number, payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from([(field << 3) | 2, ...varintBytes(payload.length)]), payload]);
}

/**
 * PushRequest{series: [RawProfileSeries{labels: [LabelPair{name, value}],
 * samples: [RawSample{raw_profile, ID}]}]}.
 */
export function encodePushRequest(labels: readonly (readonly [string, string])[], rawProfile: Buffer, id: string): Buffer {
  const parts: Buffer[] = labels.map(([name, value]) => lenField(1, Buffer.concat([lenField(1, Buffer.from(name, 'utf8')), lenField(2, Buffer.from(value, 'utf8'))])));
  parts.push(lenField(2, Buffer.concat([lenField(1, rawProfile), lenField(2, Buffer.from(id, 'utf8'))])));
  return lenField(1, Buffer.concat(parts));
}

/** A UUID derived from what identifies a scrape, so a retried push carries the same ID. */
export function profileId(profile: ScrapedProfile): string {
  const h = createHash('sha256').update(`${profile.targetId}\0${profile.type}\0${profile.time}`).digest();
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x40;
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

export async function createPyroscopeRepository(name: string, config: PyroscopeConfig, deps: PyroscopeDeps = {}): Promise<PyroscopeRepository> {
  const client = await createTargetClient(config);
  const base = config.url.replace(/\/+$/, '');
  const headers: Record<string, string> = {
    ...config.headers,
    'content-type': 'application/proto',
    'connect-protocol-version': '1',
    ...(config.tenant !== undefined ? { 'x-scope-orgid': config.tenant } : {}),
    ...client.headers,
  };
  const previous = deps.previous as Partial<PyroscopeRepository> | undefined;
  const deltas = previous?.deltas instanceof DeltaStore ? previous.deltas : new DeltaStore();
  const heapSeen = new Map<string, number>();
  const renamed = new Set<string>();
  const { logger, metrics } = deps;
  const limits = (): ProfileLimits => deps.profileLimits?.() ?? DEFAULT_PROFILE_LIMITS;

  const onRename = (from: string, to: string): void => {
    const key = `${from}\0${to}`;
    if (renamed.has(key)) return;
    renamed.add(key);
    logger?.warn({ repository: name, label: from, sent_as: to }, 'label name renamed for Pyroscope (its syntax, a reserved name, or another label already has that name)');
  };

  const gauge = (): void => {
    metrics?.deltaBaselines.set({ repository: name }, deltas.size);
    metrics?.deltaBaselineBytes.set({ repository: name }, deltas.bytes);
  };

  return {
    name,
    kind: 'pyroscope',
    deltas,

    async prepare(profile: ScrapedProfile): Promise<Prepared> {
      const now = Date.now();
      if (profile.type === 'heap') {
        heapSeen.delete(profile.targetId);
        heapSeen.set(profile.targetId, now);
        for (const [id, at] of heapSeen) {
          if (now - at <= HEAP_SEEN_MS && heapSeen.size <= 100_000) break;
          heapSeen.delete(id);
        }
      } else if (profile.type === 'allocs' && now - (heapSeen.get(profile.targetId) ?? -Infinity) <= HEAP_SEEN_MS) {
        return { status: 'skipped', reason: 'allocs holds the same samples as this target\'s heap profile, which Pyroscope already gets (both are "memory")' };
      }
      if (profile.delta === true) return { status: 'send', profile };
      // A profile that does not decode within the limits throws (a ProfileError): sent as
      // scraped it would reach Pyroscope as cumulative totals marked as deltas, or as a bomb.
      let result;
      try {
        result = deltas.compute(`${profile.targetId}\0${profile.type}`, profile.data, profile.time, now, limits());
      } finally {
        gauge();
      }
      switch (result.kind) {
        case 'as-is':
          return { status: 'send', profile };
        case 'baseline':
          metrics?.deltaResets.inc({ repository: name, reason: result.reason });
          return {
            status: 'skipped',
            reason: result.reason === 'first' ? 'first profile of this target and type: it only sets the baseline for deltas' : 'counters went down (the target restarted): this profile is the new baseline',
          };
        case 'delta':
          if (result.sampleCount === 0) return { status: 'skipped', reason: 'nothing changed since the previous scrape' };
          return { status: 'send', profile: { ...profile, data: result.data, time: result.timeMs, durationMs: result.durationMs, sampleCount: result.sampleCount } };
      }
    },

    async send(profile: ScrapedProfile, signal: AbortSignal): Promise<SendResult> {
      let body: Buffer;
      try {
        const profileName = profileNameOf(profile.type, sampleTypeNames(profile.data, limits()), profile.url);
        body = encodePushRequest(pyroscopeLabels(profileName, profile.service, profile.labels, onRename), profile.data, profileId(profile));
      } catch (err) {
        return { status: 'permanent', error: `not a pprof profile: ${(err as Error).message}` };
      }
      const url = `${base}${PUSH_PATH}`;
      try {
        const res = await request(url, { method: 'POST', body, headers, dispatcher: client.dispatcher, signal });
        const text = res.statusCode >= 300 ? await res.body.text() : (await res.body.dump(), '');
        const retryAfter = res.headers['retry-after'];
        return resultOfStatus(res.statusCode, text, Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
      } catch (err) {
        return resultOfError(err, `POST ${url}`);
      }
    },

    close: () => client.close(),
  };
}
