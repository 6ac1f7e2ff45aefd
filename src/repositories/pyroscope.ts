import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { request } from 'undici';
import { DEFAULT_PROFILE_LIMITS, formatDuration, formatSize } from '../config/index.js';
import type { ProfileLimits, PyroscopeConfig } from '../config/index.js';
import type { Metrics } from '../metrics.js';
import { openProfile } from '../profiles/decode.js';
import { DeltaStore } from '../profiles/delta.js';
import type { ScrapedProfile } from '../profiles/profile.js';
import { Cursor, lenField } from '../profiles/wire.js';
import { createTargetClient } from '../scrape/clients.js';
import { resultOfError, resultOfStatus } from './http-result.js';
import type { Prepared, Preparing } from './queue.js';
import type { Repository, SendResult } from './repository.js';

// Grafana Pyroscope (self-hosted or Grafana Cloud Profiles) through its push
// API: `POST {url}/push.v1.PusherService/Push`, a Connect unary call over
// HTTP/1.1 with a protobuf body (application/proto, not compressed). Each
// profile is one series whose labels travel as name/value pairs, so:
//   - the profile name (`__name__`) is set here, as Grafana Alloy's
//     pyroscope.scrape sets it: Go's own types get Pyroscope's names
//     (process_cpu, memory, block, mutex, goroutine), any other type its
//     configured name, whatever its samples look like (fgprof's samples look
//     like CPU; filed as process_cpu they would mix with the real CPU series).
//     The legacy /ingest endpoint guesses it from the sample types alone;
//   - service names and label values are sent as they are (UTF-8); /ingest's
//     `name=app{k=v}` syntax cannot carry `,`, `}` or `=` in values, nor most
//     characters in the service name;
//   - `__delta__="false"` tells Pyroscope that cumulative types arrive as
//     deltas already (computed here, see prepare()).
// It is also the API Grafana Alloy's pyroscope.write uses.

export const PUSH_PATH = '/push.v1.PusherService/Push';

/**
 * Label names set here or by Pyroscope itself (pkg/model/labels.go); a target
 * label of one of these names would be refused as a duplicate or change what
 * Pyroscope does with the series, so it is renamed.
 */
const RESERVED = [
  '__name__',
  '__delta__',
  'service_name',
  '__profile_type__',
  '__service_name__',
  '__otel__',
  '__period_type__',
  '__period_unit__',
  '__session_id__',
  '__type__',
  '__unit__',
  '__sampled__',
  '__order__',
];

/** A name Pyroscope takes unchanged whether its label name sanitisation is on or off. */
const PLAIN_LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Pyroscope's names for Go's profile types, as Alloy's pyroscope.scrape files them. */
const GO_PROFILE_NAMES: Readonly<Record<string, string>> = {
  cpu: 'process_cpu',
  heap: 'memory',
  allocs: 'memory',
  block: 'block',
  mutex: 'mutex',
  goroutine: 'goroutine',
  threadcreate: 'threadcreate',
};

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
 * A label name Pyroscope takes unchanged. Its ValidateLabels
 * (pkg/validation/validate.go) takes any non-empty UTF-8 name by default; a
 * tenant with label sanitisation on (disable_label_sanitization: false) takes
 * letters, digits (not first), `_` and `.`, dots turned into `_`, and refuses
 * the rest. A
 * name both take unchanged goes as it is; any other character becomes `_`, and
 * a name starting with a digit (or empty) gets a leading `_`.
 */
export function sanitizeLabelName(name: string): string {
  if (PLAIN_LABEL_NAME.test(name)) return name;
  const n = name.replace(/[^a-zA-Z0-9_]/g, '_');
  return n === '' || /^[0-9]/.test(n) ? `_${n}` : n;
}

/**
 * The series labels for a profile. Target labels come in name order; a name
 * that is reserved, or sanitises to one already taken by an earlier label,
 * gets `_2`, `_3`, … so no two names become one and no value overwrites
 * another. Empty values are left out (Pyroscope, like Prometheus, treats an
 * empty value as no label).
 */
export function pyroscopeLabels(
  profileName: string,
  service: string,
  labels: Readonly<Record<string, string>>,
  onRename?: (from: string, to: string, reason: string) => void,
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
    const reasons: string[] = [];
    if (name !== key) reasons.push('Pyroscope refuses or changes this name');
    if (taken.has(name)) {
      reasons.push(RESERVED.includes(name) ? `${name} is a label Pyroscope sets itself` : `another label is sent as ${name}`);
      let i = 2;
      while (taken.has(`${name}_${i}`)) i++;
      name = `${name}_${i}`;
    }
    if (name !== key) onRename?.(key, name, reasons.join('; '));
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
  return typeNamesOf(openProfile(data, limits).raw);
}

/** Names of the sample types of an opened profile: the scan accepted it, so keys are one byte, and only varints and lengths. */
function typeNamesOf(buf: Buffer): string[] {
  const strings: string[] = [];
  const typeIndexes: number[] = [];
  const c = new Cursor(buf);
  while (c.pos < buf.length) {
    const key = buf[c.pos++] as number;
    if ((key & 7) === 0) {
      c.varint();
      continue;
    }
    const len = c.varint();
    const start = c.pos;
    c.pos += len;
    if (key >> 3 === 6) strings.push(buf.toString('utf8', start, c.pos));
    else if (key >> 3 === 1) {
      // ValueType { int64 type = 1; int64 unit = 2; }
      const v = new Cursor(buf, start);
      while (v.pos < c.pos) {
        const k = buf[v.pos++] as number;
        const value = v.varint();
        if (k === 0x08) typeIndexes.push(value);
      }
    }
  }
  return typeIndexes.map((i) => strings[i] ?? '');
}

export interface PushLimits {
  readonly maxLabelNamesPerSeries: number;
  readonly maxProfileSize: number;
  readonly maxSamples: number;
}

/** Pyroscope's max_label_name_length and max_label_value_length defaults, in bytes (pkg/validation/limits.go). */
const MAX_LABEL_NAME_BYTES = 1024;
const MAX_LABEL_VALUE_BYTES = 2048;

/**
 * Why Pyroscope's distributor would refuse a series with `labels` and a
 * profile of `size` bytes uncompressed holding `samples` samples, or
 * undefined. It refuses each of these whole (nothing is truncated).
 */
export function overPushLimits(labels: readonly (readonly [string, string])[], size: number, samples: number, limits: PushLimits): string | undefined {
  const { maxLabelNamesPerSeries: names, maxProfileSize: bytes, maxSamples } = limits;
  if (names > 0 && labels.length > names) {
    return `the series has ${labels.length} label names (with __name__, __delta__ and service_name) and Pyroscope allows ${names} (max_label_names_per_series): drop target labels, or raise max_label_names_per_series here and on the server`;
  }
  for (const [name, value] of labels) {
    if (Buffer.byteLength(name) > MAX_LABEL_NAME_BYTES) return `label name ${name.slice(0, 64)}… is longer than the ${MAX_LABEL_NAME_BYTES} bytes Pyroscope allows (max_label_name_length): shorten it`;
    if (Buffer.byteLength(value) > MAX_LABEL_VALUE_BYTES) return `label ${name} has a value longer than the ${MAX_LABEL_VALUE_BYTES} bytes Pyroscope allows (max_label_value_length): shorten it or drop the label`;
  }
  if (bytes > 0 && size > bytes) return `the profile is ${formatSize(size)} uncompressed and Pyroscope allows ${formatSize(bytes)} (max_profile_size): raise max_profile_size here and on the server`;
  if (maxSamples > 0 && samples > maxSamples) {
    return `the profile has ${samples} samples and Pyroscope allows ${maxSamples} (max_profile_stacktrace_samples): raise max_profile_stacktrace_samples here and on the server`;
  }
  return undefined;
}

/**
 * Pyroscope's profile name for one of our types: Pyroscope's name for Go's own
 * types, else the configured name. A `delta: true` type serving Go's heap,
 * block or mutex samples (godeltaprof) is filed as memory, block or mutex, as
 * Alloy files godeltaprof_memory, godeltaprof_block and godeltaprof_mutex.
 */
export function profileNameOf(type: string, sampleTypes: readonly string[], delta = false, url = ''): string {
  const go = GO_PROFILE_NAMES[type];
  if (go !== undefined) return go;
  if (delta) {
    if (sampleTypes.some((t) => t.startsWith('alloc_') || t.startsWith('inuse_'))) return 'memory';
    if (sampleTypes.includes('contentions') && sampleTypes.includes('delay')) return /mutex/i.test(type) || /mutex/i.test(url) ? 'mutex' : 'block';
  }
  return type;
}

/**
 * Whether Pyroscope's `memory` series of this profile's target comes from its
 * heap profile: allocs holds the same alloc_* samples, so only one of them may
 * be sent. Decided by the target's configured types, so every scrape of a
 * target decides alike. A profile queued without them (by an older version)
 * is sent: nothing says its target has heap.
 */
export function memoryFromHeap(profile: ScrapedProfile): boolean {
  const types: unknown = profile.targetTypes;
  return Array.isArray(types) && types.includes('heap');
}

/**
 * Why a profile dated `timeMs` lies outside Pyroscope's ingestion window at
 * `now`, or undefined when inside. Pyroscope takes a time after now minus
 * reject_older_than and before now plus reject_newer_than (either 0: no bound).
 */
export function outsideIngestionWindow(timeMs: number, now: number, olderThanMs: number, newerThanMs: number): string | undefined {
  if (olderThanMs > 0 && !(timeMs > now - olderThanMs)) return `taken ${formatDuration(now - timeMs)} ago, and Pyroscope refuses profiles older than reject_older_than (${formatDuration(olderThanMs)})`;
  if (newerThanMs > 0 && !(timeMs < now + newerThanMs)) return `dated ${formatDuration(timeMs - now)} ahead, and Pyroscope refuses profiles further ahead than reject_newer_than (${formatDuration(newerThanMs)})`;
  return undefined;
}

// --- protobuf encoding of push.v1.PushRequest (api/push/v1/push.proto) ---

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
  const olderThanMs = config.reject_older_than;
  const newerThanMs = config.reject_newer_than;
  let windowLoggedAt = -Infinity;
  const pushLimits: PushLimits = {
    maxLabelNamesPerSeries: config.max_label_names_per_series,
    maxProfileSize: config.max_profile_size,
    maxSamples: config.max_profile_stacktrace_samples,
  };
  const renamed = new Set<string>();
  const { logger, metrics } = deps;
  const limits = (): ProfileLimits => deps.profileLimits?.() ?? DEFAULT_PROFILE_LIMITS;

  const onRename = (from: string, to: string, reason: string): void => {
    const key = `${from}\0${to}`;
    if (renamed.has(key)) return;
    renamed.add(key);
    logger?.warn({ repository: name, label: from, sent_as: to, reason }, `label ${from} is sent to Pyroscope as ${to}: ${reason}`);
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
      if (profile.type === 'allocs' && memoryFromHeap(profile)) {
        return { status: 'skipped', reason: 'allocs holds the same samples as this target\'s heap profile, which Pyroscope gets (both are "memory")' };
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
      let labels: [string, string][];
      let opened;
      try {
        opened = openProfile(profile.data, limits());
        const profileName = profileNameOf(profile.type, typeNamesOf(opened.raw), profile.delta === true, profile.url);
        labels = pyroscopeLabels(profileName, profile.service, profile.labels, onRename);
      } catch (err) {
        return { status: 'permanent', error: `not a pprof profile: ${(err as Error).message}` };
      }
      // Pyroscope checks the profile's own TimeNanos, even where the daemon files it by the scrape time
      const timeMs = opened.summary.timeMs ?? profile.time;
      const now = Date.now();
      const outside = outsideIngestionWindow(timeMs, now, olderThanMs, newerThanMs);
      if (outside !== undefined) {
        metrics?.queueDropped.inc({ repository: name, reason: 'outside_ingestion_window' });
        if (now - windowLoggedAt >= 60_000) {
          windowLoggedAt = now;
          logger?.warn(
            { repository: name, target: profile.targetId, type: profile.type, profile_time: new Date(timeMs).toISOString(), reason: 'outside_ingestion_window' },
            `profile not sent: ${outside}; it is dropped (if the server's window differs, set reject_older_than/reject_newer_than on this repository)`,
          );
        }
        return { status: 'skipped', reason: `outside_ingestion_window: ${outside}` };
      }
      const over = overPushLimits(labels, opened.raw.length, opened.summary.sampleCount, pushLimits);
      if (over !== undefined) return { status: 'permanent', error: `not sent: ${over}` };
      const body = encodePushRequest(labels, profile.data, profileId(profile));
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
