import { gzipSync } from 'node:zlib';
import { DEFAULT_PROFILE_LIMITS } from '../config/index.js';
import type { ProfileLimits } from '../config/index.js';
import { LruMap } from '../lru.js';
import { openProfile } from './decode.js';
import { IndexedProfile } from './indexed.js';

// Deltas of cumulative pprof profiles (Go's allocs/heap alloc_*, block and
// mutex), for repositories that want what happened between two scrapes
// rather than totals since the process started.
//
// Samples of two profiles from one process are matched by their stack and
// labels. Go numbers locations afresh in every profile it writes, so a
// location is known by its address (stable for the life of a process), or,
// when a profiler writes no addresses, by its lines (function, file, line).
// Each sample's key is a 53-bit hash of its location keys in order and its
// labels in any order; a baseline keeps only the sorted keys and the
// cumulative values, so it costs 8 × (1 + cumulative types) bytes a sample.
// The profile is read where it lies (IndexedProfile), after the structure
// limits, and the delta is written from its bytes: no object per sample.

/** Sample types whose values only grow while a process lives. */
export const CUMULATIVE_SAMPLE_TYPES: ReadonlySet<string> = new Set(['alloc_objects', 'alloc_space', 'contentions', 'delay']);

export type DeltaResult =
  /** The difference to the previous profile: gzipped pprof. */
  | { readonly kind: 'delta'; readonly data: Buffer; readonly timeMs: number; readonly durationMs: number; readonly sampleCount: number }
  /**
   * Nothing to send: this profile only became the baseline (first of its series, or a
   * restart: a counter went down, or a stack of the baseline is gone).
   */
  | { readonly kind: 'baseline'; readonly reason: 'first' | 'restart' }
  /** The profile has no cumulative sample type: send it as it is. */
  | { readonly kind: 'as-is' };

/** What a series keeps of its last profile: enough to diff the next one against it. */
export interface Baseline {
  /** Sorted, distinct sample keys. */
  readonly keys: Float64Array;
  /** Cumulative values, `width` per key, in key order (width: the signature's types). */
  readonly values: Float64Array;
  /** Indexes of the cumulative sample types, and their names: a profile with other ones is not comparable. */
  readonly signature: string;
  readonly timeNs: bigint;
}

/** A delta's result, and what the series' baseline becomes (undefined: keep none, the profile has no cumulative type). */
export interface DeltaOutcome {
  readonly result: DeltaResult;
  readonly baseline: Baseline | undefined;
}

/**
 * Where a delta stage keeps its baselines: in memory (DeltaStore) or in
 * files under state_dir (src/delivery/baselines.ts). compute() calls for one
 * series come in scrape order, one at a time (the queue's transform stage).
 */
export interface Deltas {
  /**
   * The delta of `data` against the series' previous profile, which it then
   * replaces; a ProfileError for a profile past `limits` or not pprof, and the
   * baseline stays as it was.
   */
  compute(series: string, data: Uint8Array, fallbackTimeMs: number, now?: number, limits?: ProfileLimits): DeltaResult | Promise<DeltaResult>;
  /** Whether the series has a baseline. */
  has(series: string): boolean;
  /** Baselines kept. */
  readonly size: number;
  /** Memory the baselines take. */
  readonly bytes: number;
  /** Baselines dropped to stay within memory: the next profile of their series only sets a baseline again. */
  readonly evictions: number;
}

interface HeldBaseline extends Baseline {
  readonly bytes: number;
  lastUsed: number;
}

export interface DeltaStoreOptions {
  /** Memory for baselines; past it the least recently used go (default 256 MiB). */
  readonly maxBytes?: number;
  /** A baseline not used for this long goes (its target is gone) (default 1 h). */
  readonly idleMs?: number;
}

const BASELINE_OVERHEAD = 160;

/**
 * Baselines per series (a target × profile type) in memory, and the delta of
 * each new profile against the one before. Calls for one series must come in
 * scrape order; the store keeps the last profile of each series, bounded by
 * memory. The daemon keeps its baselines on disk instead
 * (src/delivery/baselines.ts); this one serves where there is no state_dir.
 */
export class DeltaStore implements Deltas {
  readonly #baselines: LruMap<string, HeldBaseline>;
  readonly #idleMs: number;
  /** Baselines dropped to stay within memory. */
  evictions = 0;

  constructor(options: DeltaStoreOptions = {}) {
    this.#baselines = new LruMap(options.maxBytes ?? 256 * 1024 ** 2, (b, series) => b.bytes + series.length * 2);
    this.#idleMs = options.idleMs ?? 3_600_000;
  }

  get size(): number {
    return this.#baselines.size;
  }

  /** Memory the baselines take, estimated from their arrays. */
  get bytes(): number {
    return this.#baselines.bytes;
  }

  has(series: string): boolean {
    return this.#baselines.has(series);
  }

  /**
   * The delta of `data` (a pprof profile, gzipped or not) against the
   * series' previous profile, which it then replaces. `fallbackTimeMs` stands
   * in for a profile without TimeNanos. A profile past `limits` or not pprof
   * throws a ProfileError and leaves the baseline as it was.
   */
  compute(series: string, data: Uint8Array, fallbackTimeMs: number, now = Date.now(), limits: ProfileLimits = DEFAULT_PROFILE_LIMITS): DeltaResult {
    const { result, baseline } = deltaOf(this.#baselines.get(series), data, fallbackTimeMs, limits);
    if (baseline) this.#store(series, held(baseline, now), now);
    return result;
  }

  #store(series: string, baseline: HeldBaseline, now: number): void {
    // baselines idle past idleMs go too (their targets are gone); only those forgotten for memory count as evictions
    this.evictions += this.#baselines.set(series, baseline, (b) => now - b.lastUsed > this.#idleMs);
  }

  /** Forgets every baseline. */
  clear(): void {
    this.#baselines.clear();
  }
}

/**
 * The delta of `data` (a pprof profile, gzipped or not) against `previous`,
 * the baseline of its series, and the baseline the profile makes.
 * `fallbackTimeMs` stands in for a profile without TimeNanos. A profile past
 * `limits` or not pprof throws a ProfileError. Pure: where baselines are
 * kept is the caller's business (a Deltas).
 */
export function deltaOf(previous: Baseline | undefined, data: Uint8Array, fallbackTimeMs: number, limits: ProfileLimits = DEFAULT_PROFILE_LIMITS): DeltaOutcome {
  const { raw, summary } = openProfile(data, limits);
  const profile = new IndexedProfile(raw, summary.counts);
  const names = profile.sampleTypes.map((t) => profile.string(t));
  const cumulative: number[] = [];
  names.forEach((name, i) => {
    if (CUMULATIVE_SAMPLE_TYPES.has(name)) cumulative.push(i);
  });
  if (cumulative.length === 0) return { result: { kind: 'as-is' }, baseline: undefined };
  const signature = cumulative.map((i) => `${i}:${names[i]}`).join(',');
  const timeNs = profile.timeNanos > 0n ? profile.timeNanos : BigInt(Math.round(fallbackTimeMs)) * 1_000_000n;
  const types = names.length;

  // samples with equal keys are merged into the first of them: a group each
  const keys = profile.sampleKeys();
  const unique = uniqueSorted(keys);
  const groups = unique.length;
  const groupOf = new Uint32Array(keys.length);
  for (let s = 0; s < keys.length; s++) groupOf[s] = findKey(unique, keys[s] as number);
  const sums = new Float64Array(groups * types);
  profile.addValues(groupOf, sums, types);

  const baseline = makeBaseline(unique, sums, types, cumulative, signature, timeNs);
  const reset = (reason: 'first' | 'restart'): DeltaOutcome => ({ result: { kind: 'baseline', reason }, baseline });
  if (!previous || previous.signature !== signature) return reset('first');
  if (timeNs <= previous.timeNs) return reset('restart');
  // Go keeps every stack of a cumulative profile for the life of the process
  if (!containsAll(unique, previous.keys)) return reset('restart');

  const width = cumulative.length;
  for (let g = 0; g < groups; g++) {
    const idx = findKey(previous.keys, unique[g] as number);
    for (let c = 0; c < width; c++) {
      const at = g * types + (cumulative[c] as number);
      const d = (sums[at] as number) - (idx < 0 ? 0 : (previous.values[idx * width + c] as number));
      // a counter went down: the process restarted, so the new profile is the baseline
      if (d < 0) return reset('restart');
      sums[at] = d;
    }
  }
  // each group's first sample, in profile order, when anything in its row is not 0
  const seen = new Uint8Array(groups);
  const emit = new Uint32Array(groups);
  let emitted = 0;
  for (let s = 0; s < keys.length; s++) {
    const g = groupOf[s] as number;
    if (seen[g] === 1) continue;
    seen[g] = 1;
    for (let v = 0; v < types; v++) {
      if (sums[g * types + v] !== 0) {
        emit[emitted++] = s;
        break;
      }
    }
  }
  const durationNs = timeNs - previous.timeNs;
  const encoded = profile.encodeWith(emit.subarray(0, emitted), groupOf, sums, types, timeNs, durationNs);
  return {
    result: {
      kind: 'delta',
      data: gzipSync(encoded, { level: 1 }),
      timeMs: Number(timeNs / 1_000_000n),
      durationMs: Number(durationNs / 1_000_000n),
      sampleCount: emitted,
    },
    baseline,
  };
}

function findKey(keys: Float64Array, key: number): number {
  let lo = 0;
  let hi = keys.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const k = keys[mid] as number;
    if (k < key) lo = mid + 1;
    else if (k > key) hi = mid - 1;
    else return mid;
  }
  return -1;
}

/** Whether every key of `sub` is in `keys` (both sorted, distinct). */
function containsAll(keys: Float64Array, sub: Float64Array): boolean {
  if (sub.length > keys.length) return false;
  let k = 0;
  for (let i = 0; i < sub.length; i++) {
    const want = sub[i] as number;
    while (k < keys.length && (keys[k] as number) < want) k++;
    if (k === keys.length || keys[k] !== want) return false;
    k++;
  }
  return true;
}

/** The distinct keys, sorted. */
function uniqueSorted(keys: Float64Array): Float64Array {
  const sorted = Float64Array.from(keys).sort();
  let m = 0;
  for (let i = 0; i < sorted.length; i++) {
    if (m === 0 || sorted[i] !== sorted[m - 1]) sorted[m++] = sorted[i] as number;
  }
  return sorted.slice(0, m);
}

function makeBaseline(keys: Float64Array, sums: Float64Array, types: number, cumulative: number[], signature: string, timeNs: bigint): Baseline {
  const width = cumulative.length;
  const values = new Float64Array(keys.length * width);
  for (let g = 0; g < keys.length; g++) {
    for (let c = 0; c < width; c++) values[g * width + c] = sums[g * types + (cumulative[c] as number)] as number;
  }
  return { keys, values, signature, timeNs };
}

function held(b: Baseline, now: number): HeldBaseline {
  return { ...b, bytes: b.keys.byteLength + b.values.byteLength + BASELINE_OVERHEAD + b.signature.length * 2, lastUsed: now };
}
