import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { request } from 'undici';
import { DEFAULT_PROFILE_LIMITS, formatDuration, formatSize } from '../config/index.js';
import type { ProfileLimits } from '../config/index.js';
import type { Metrics } from '../metrics.js';
import { openProfile } from '../profiles/decode.js';
import { DeltaStore } from '../profiles/delta.js';
import { isTrace } from '../profiles/profile.js';
import type { ScrapedProfile } from '../profiles/profile.js';
import { Cursor, eachLengthField, lenField } from '../profiles/wire.js';
import { createTargetClient } from '../scrape/clients.js';
import { resultOfError, resultOfStatus } from './http-result.js';
import type { PyroscopeConfig } from './kinds/pyroscope.js';
import type { Prepared, Preparing } from './queue.js';
import type { Repository, SendResult } from './repository.js';
import { pyroscopeLabels, seriesLabelsProblem, targetLabelsProblem } from './pyroscope-labels.js';

export { pyroscopeLabelName, pyroscopeLabels } from './pyroscope-labels.js';

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
  /** Whether it has said it takes no traces; carried over a reload, so it says so once per process. */
  readonly traceNotice: { said: boolean };
}

/** What a Go execution trace comes to here: Pyroscope holds pprof profiles only. */
const TRACE_SKIPPED = 'a Go execution trace: Pyroscope holds pprof profiles only (traces go to profefe, directory and s3)';

/**
 * Names of the sample types of a pprof profile (gzipped or not), read without
 * decoding the rest, once it has passed the limits. Throws a ProfileError.
 */
export function sampleTypeNames(data: Uint8Array, limits: ProfileLimits = DEFAULT_PROFILE_LIMITS): string[] {
  return typeNamesOf(readProfileNames(openProfile(data, limits).raw, false));
}

/**
 * What Pyroscope's naming and limits read of an opened profile, in one walk:
 * its string table, the name index of each sample type, and (when asked)
 * each sample's string labels as key, str index pairs.
 */
export interface ProfileNames {
  readonly strings: readonly string[];
  readonly typeIndexes: readonly number[];
  readonly sampleLabels: readonly (readonly number[])[];
}

/** Reads ProfileNames from an opened profile: the scan accepted it, so keys are one byte, and only varints and lengths. */
export function readProfileNames(buf: Buffer, withSampleLabels: boolean): ProfileNames {
  const strings: string[] = [];
  const typeIndexes: number[] = [];
  const sampleLabels: number[][] = [];
  eachLengthField(buf, 0, buf.length, (key, start, end) => {
    if (key >> 3 === 6) strings.push(buf.toString('utf8', start, end));
    else if (key >> 3 === 1) {
      // ValueType { int64 type = 1; int64 unit = 2; }
      const v = new Cursor(buf, start);
      while (v.pos < end) {
        const k = buf[v.pos++] as number;
        const value = v.varint(end);
        if (k === 0x08) typeIndexes.push(value);
      }
    } else if (key >> 3 === 2 && withSampleLabels) {
      const pairs = labelIndexes(buf, start, end);
      if (pairs.length > 0) sampleLabels.push(pairs);
    }
  });
  return { strings, typeIndexes, sampleLabels };
}

/** Names of the sample types. */
function typeNamesOf({ strings, typeIndexes }: ProfileNames): string[] {
  return typeIndexes.map((i) => strings[i] ?? '');
}

export interface PushLimits {
  readonly maxLabelNamesPerSeries: number;
  readonly maxProfileSize: number;
  readonly maxSamples: number;
}

/**
 * Why Pyroscope's distributor would refuse a series with `labels`, each group
 * of samples adding the labels of `sampleLabels` to them, and a profile of
 * `size` bytes uncompressed holding `samples` samples, or undefined. It
 * refuses each of these whole (nothing is truncated).
 */
export function overPushLimits(
  labels: readonly (readonly [string, string])[],
  size: number,
  samples: number,
  limits: PushLimits,
  sampleLabels: readonly (readonly (readonly [string, string])[])[] = [],
): string | undefined {
  const { maxLabelNamesPerSeries: names, maxProfileSize: bytes, maxSamples } = limits;
  const series = seriesLabelsProblem(labels, names);
  if (series !== undefined) return series;
  if (bytes > 0 && size > bytes) return `the profile is ${formatSize(size)} uncompressed and Pyroscope allows ${formatSize(bytes)} (max_profile_size): raise max_profile_size here and on the server`;
  if (maxSamples > 0 && samples > maxSamples) {
    return `the profile has ${samples} samples and Pyroscope allows ${maxSamples} (max_profile_stacktrace_samples): raise max_profile_stacktrace_samples here and on the server`;
  }
  for (const group of sampleLabels) {
    const problem = seriesLabelsProblem(labels, names, group);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

/**
 * The labels the samples of a profile add to its series, once per distinct
 * group: Pyroscope files the samples of each set of string labels as a series
 * of its own (pkg/pprof/split), leaving out span_id and profile_id, and
 * labels whose name the series has already.
 */
export function sampleLabelGroups({ strings, sampleLabels }: ProfileNames, seriesNames: ReadonlySet<string>): [string, string][][] {
  const groups = new Map<string, [string, string][]>();
  for (const pairs of sampleLabels) {
    const group: [string, string][] = [];
    const seen = new Set<string>();
    for (let i = 0; i < pairs.length; i += 2) {
      const name = strings[pairs[i] as number] ?? '';
      const value = strings[pairs[i + 1] as number] ?? '';
      if (value === '' || name === 'span_id' || name === 'profile_id' || seriesNames.has(name) || seen.has(name)) continue;
      seen.add(name);
      group.push([name, value]);
    }
    if (group.length === 0) continue;
    group.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const id = group.flat().join('\0');
    if (!groups.has(id)) groups.set(id, group);
  }
  return [...groups.values()];
}

/** The string labels of a Sample (`repeated Label label = 3`; Label{int64 key = 1; int64 str = 2}) between start and end, as key, str index pairs. */
function labelIndexes(buf: Buffer, start: number, end: number): number[] {
  const pairs: number[] = [];
  eachLengthField(buf, start, end, (key, from, to) => {
    if (key !== 0x1a) return;
    const l = new Cursor(buf, from);
    let name = 0;
    let str = 0;
    while (l.pos < to) {
      const k = buf[l.pos++] as number;
      if ((k & 7) !== 0) {
        l.skipLength();
        continue;
      }
      const v = l.int64();
      if (k === 0x08) name = v;
      else if (k === 0x10) str = v;
    }
    if (str > 0) pairs.push(name, str);
  });
  return pairs;
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

/** The series a godeltaprof type feeds, told by its name or path (delta_heap, /debug/pprof/delta_mutex). */
function godeltaprofSeries(type: string, path: string): string | undefined {
  const text = `${type} ${path}`;
  if (/mutex/i.test(text)) return 'mutex';
  if (/block/i.test(text)) return 'block';
  if (/heap|alloc|mem/i.test(text)) return 'memory';
  return undefined;
}

/**
 * Which of its target's types Pyroscope's `series` (memory, block or mutex)
 * comes from: two types filed under one name would count the same events
 * twice. A godeltaprof type (`delta: true`, named or served as heap, block or
 * mutex) first, as Alloy prefers godeltaprof; for memory then heap, then
 * allocs (the same alloc_* samples); for block and mutex Go's own type.
 * Decided by the target's configured types, so every scrape of a target
 * decides alike. Undefined when nothing decides: a profile queued without
 * its target's types (by an older version) is sent.
 */
export function seriesSourceOf(series: string, profile: ScrapedProfile): string | undefined {
  const types: unknown = profile.targetTypes;
  if (!Array.isArray(types)) return undefined;
  const deltas: unknown = profile.targetDeltaTypes;
  if (typeof deltas === 'object' && deltas !== null) {
    for (const type of types) {
      const path = (deltas as Record<string, unknown>)[String(type)];
      if (typeof type === 'string' && typeof path === 'string' && godeltaprofSeries(type, path) === series) return type;
    }
  }
  if (series === 'memory') return types.includes('heap') ? 'heap' : types.includes('allocs') ? 'allocs' : undefined;
  if (series === 'block' || series === 'mutex') return types.includes(series) ? series : undefined;
  return undefined;
}

/** Why a profile filed as `series` is not sent when the target's `source` type feeds that series; undefined when it is the source (or nothing decides). */
function notTheSource(series: string, profile: ScrapedProfile): string | undefined {
  const source = seriesSourceOf(series, profile);
  if (source === undefined || source === profile.type) return undefined;
  return `${profile.type} holds the same samples as this target's ${source} profile, which Pyroscope gets (both are "${series}")`;
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
  const traceNotice = typeof previous?.traceNotice?.said === 'boolean' ? previous.traceNotice : { said: false };
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

  const skipTrace = (profile: ScrapedProfile): Prepared & SendResult => {
    if (!traceNotice.said) {
      traceNotice.said = true;
      logger?.warn(
        { repository: name, type: profile.type, target: profile.targetId },
        'Pyroscope cannot hold Go execution traces: this repository skips every trace (traces go only to profefe, directory and s3 repositories); said once',
      );
    }
    return { status: 'skipped', reason: TRACE_SKIPPED };
  };

  const gauge = (): void => {
    metrics?.deltaBaselines.set({ repository: name }, deltas.size);
    metrics?.deltaBaselineBytes.set({ repository: name }, deltas.bytes);
  };

  return {
    name,
    kind: 'pyroscope',
    deltas,
    traceNotice,

    async prepare(profile: ScrapedProfile): Promise<Prepared> {
      // before anything reads the bytes: a trace is not pprof
      if (isTrace(profile)) return skipTrace(profile);
      const now = Date.now();
      // no baseline is kept for what is never sent
      const unfit = targetLabelsProblem(profile.service, profile.labels, pushLimits.maxLabelNamesPerSeries);
      if (unfit !== undefined) return { status: 'skipped', reason: `target_labels: ${unfit}` };
      const goSeries = GO_PROFILE_NAMES[profile.type];
      const other = goSeries === undefined ? undefined : notTheSource(goSeries, profile);
      if (other !== undefined) return { status: 'skipped', reason: other };
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
      if (isTrace(profile)) return skipTrace(profile);
      let labels: [string, string][];
      let profileName: string;
      let opened;
      let names: ProfileNames;
      try {
        opened = openProfile(profile.data, limits());
        names = readProfileNames(opened.raw, opened.summary.counts.labels > 0);
        profileName = profileNameOf(profile.type, typeNamesOf(names), profile.delta === true, profile.url);
        labels = pyroscopeLabels(profileName, profile.service, profile.labels, onRename);
      } catch (err) {
        return { status: 'permanent', error: `not a pprof profile: ${(err as Error).message}` };
      }
      // a godeltaprof type is told apart by its samples only here; Go's own types were in prepare()
      const other = profile.delta === true && GO_PROFILE_NAMES[profile.type] === undefined ? notTheSource(profileName, profile) : undefined;
      if (other !== undefined) return { status: 'skipped', reason: other };
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
      // the target's own labels fit (prepare() checked them); labels on samples add series labels too
      const fromSamples = sampleLabelGroups(names, new Set(labels.map(([n]) => n)));
      const over = overPushLimits(labels, opened.raw.length, opened.summary.sampleCount, pushLimits, fromSamples);
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
