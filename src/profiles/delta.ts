import { gunzipSync, gzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import type { Sample } from 'pprof-format';

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

/** Sample types whose values only grow while a process lives. */
export const CUMULATIVE_SAMPLE_TYPES: ReadonlySet<string> = new Set(['alloc_objects', 'alloc_space', 'contentions', 'delay']);

export type DeltaResult =
  /** The difference to the previous profile: gzipped pprof. */
  | { readonly kind: 'delta'; readonly data: Buffer; readonly timeMs: number; readonly durationMs: number; readonly sampleCount: number }
  /** Nothing to send: this profile only became the baseline (first of its series, or the counters went down: a restart). */
  | { readonly kind: 'baseline'; readonly reason: 'first' | 'restart' }
  /** The profile has no cumulative sample type: send it as it is. */
  | { readonly kind: 'as-is' };

interface Baseline {
  /** Sorted sample keys. */
  readonly keys: Float64Array;
  /** Cumulative values, `cumulative.length` per key, in key order. */
  readonly values: Float64Array;
  /** Indexes of the cumulative sample types, and their names: a profile with other ones is not comparable. */
  readonly signature: string;
  readonly timeNs: bigint;
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
 * Baselines per series (a target × profile type), and the delta of each new
 * profile against the one before. Calls for one series must come in scrape
 * order; the store keeps the last profile of each series, bounded by memory.
 */
export class DeltaStore {
  readonly #baselines = new Map<string, Baseline>();
  readonly #maxBytes: number;
  readonly #idleMs: number;
  #bytes = 0;
  /** Baselines dropped to stay within memory. */
  evictions = 0;

  constructor(options: DeltaStoreOptions = {}) {
    this.#maxBytes = options.maxBytes ?? 256 * 1024 ** 2;
    this.#idleMs = options.idleMs ?? 3_600_000;
  }

  get size(): number {
    return this.#baselines.size;
  }

  /** Memory the baselines take, estimated from their arrays. */
  get bytes(): number {
    return this.#bytes;
  }

  has(series: string): boolean {
    return this.#baselines.has(series);
  }

  /**
   * The delta of `data` (a pprof profile, gzipped or not) against the
   * series' previous profile, which it then replaces. `fallbackTimeMs` stands
   * in for a profile without TimeNanos.
   */
  compute(series: string, data: Uint8Array, fallbackTimeMs: number, now = Date.now()): DeltaResult {
    const raw = data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b ? gunzipSync(data) : data;
    const profile = Profile.decode(raw);
    const strings = profile.stringTable.strings;
    const cumulative: number[] = [];
    profile.sampleType.forEach((t, i) => {
      if (CUMULATIVE_SAMPLE_TYPES.has(strings[Number(t.type)] ?? '')) cumulative.push(i);
    });
    if (cumulative.length === 0) return { kind: 'as-is' };
    const signature = cumulative.map((i) => `${i}:${strings[Number(profile.sampleType[i]?.type ?? 0)]}`).join(',');
    // TimeNanos is past 2^53: exact arithmetic in bigint
    const timeNs = BigInt(profile.timeNanos) > 0n ? BigInt(profile.timeNanos) : BigInt(Math.round(fallbackTimeMs)) * 1_000_000n;

    const keys = sampleKeys(profile);
    const width = cumulative.length;
    const types = profile.sampleType.length;

    // samples with equal keys are merged into the first of them
    const firstOf = new Map<number, number>();
    const merged: number[] = [];
    const totals = new Float64Array(types).fill(0);
    const sums: Float64Array[] = [];
    for (let s = 0; s < profile.sample.length; s++) {
      const sample = profile.sample[s] as Sample;
      const key = keys[s] as number;
      let at = firstOf.get(key);
      if (at === undefined) {
        at = merged.length;
        firstOf.set(key, at);
        merged.push(s);
        sums.push(new Float64Array(types));
      }
      const row = sums[at] as Float64Array;
      for (let v = 0; v < types; v++) {
        const value = Number(sample.value[v] ?? 0);
        row[v] = (row[v] as number) + value;
        totals[v] = (totals[v] as number) + value;
      }
    }

    const previous = this.#baselines.get(series);
    const next = this.#makeBaseline(merged, keys, sums, cumulative, signature, timeNs, now);
    this.#store(series, next, now);
    if (!previous || previous.signature !== signature) return { kind: 'baseline', reason: 'first' };
    if (timeNs <= previous.timeNs) return { kind: 'baseline', reason: 'restart' };

    const out: Sample[] = [];
    for (let m = 0; m < merged.length; m++) {
      const row = sums[m] as Float64Array;
      const idx = findKey(previous.keys, keys[merged[m] as number] as number);
      let nonZero = false;
      for (let c = 0; c < width; c++) {
        const v = cumulative[c] as number;
        const before = idx < 0 ? 0 : (previous.values[idx * width + c] as number);
        const d = (row[v] as number) - before;
        // a counter went down: the process restarted, so the new profile is the baseline
        if (d < 0) return { kind: 'baseline', reason: 'restart' };
        row[v] = d;
      }
      for (let v = 0; v < types; v++) if (row[v] !== 0) nonZero = true;
      if (!nonZero) continue;
      const sample = profile.sample[merged[m] as number] as Sample;
      sample.value = Array.from(row, (x) => x);
      out.push(sample);
    }
    profile.sample = out;
    const durationNs = timeNs - previous.timeNs;
    profile.timeNanos = timeNs;
    profile.durationNanos = durationNs;
    const encoded = profile.encode();
    return {
      kind: 'delta',
      data: gzipSync(encoded, { level: 1 }),
      timeMs: Number(timeNs / 1_000_000n),
      durationMs: Number(durationNs / 1_000_000n),
      sampleCount: out.length,
    };
  }

  #makeBaseline(merged: number[], keys: Float64Array, sums: Float64Array[], cumulative: number[], signature: string, timeNs: bigint, now: number): Baseline {
    const n = merged.length;
    const width = cumulative.length;
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (keys[merged[a] as number] as number) - (keys[merged[b] as number] as number));
    const sortedKeys = new Float64Array(n);
    const values = new Float64Array(n * width);
    order.forEach((m, i) => {
      sortedKeys[i] = keys[merged[m] as number] as number;
      const row = sums[m] as Float64Array;
      for (let c = 0; c < width; c++) values[i * width + c] = row[cumulative[c] as number] as number;
    });
    return { keys: sortedKeys, values, signature, timeNs, bytes: sortedKeys.byteLength + values.byteLength + BASELINE_OVERHEAD + signature.length * 2, lastUsed: now };
  }

  #store(series: string, baseline: Baseline, now: number): void {
    const old = this.#baselines.get(series);
    if (old) {
      this.#bytes -= old.bytes + series.length * 2;
      this.#baselines.delete(series);
    }
    this.#baselines.set(series, baseline);
    this.#bytes += baseline.bytes + series.length * 2;
    // Map order is least recently stored first
    for (const [key, b] of this.#baselines) {
      const idle = now - b.lastUsed > this.#idleMs;
      if (!idle && this.#bytes <= this.#maxBytes) break;
      if (key === series) break;
      this.#baselines.delete(key);
      this.#bytes -= b.bytes + key.length * 2;
      if (!idle) this.evictions++;
    }
  }

  /** Forgets every baseline. */
  clear(): void {
    this.#baselines.clear();
    this.#bytes = 0;
  }
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

// Two independent 32-bit lanes (murmur3-style mixing) give a 53-bit key.
const SEED_A = 0x9747b28c;
const SEED_B = 0x85ebca6b;

function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function hashString(s: string, seed: number): number {
  let h = seed;
  for (let i = 0; i < s.length; i++) h = mix(h, s.charCodeAt(i));
  return finish(h ^ s.length);
}

/** The key of every sample of `profile`, in sample order. */
export function sampleKeys(profile: Profile): Float64Array {
  const strings = profile.stringTable.strings;
  const strA = new Map<number, number>();
  const strB = new Map<number, number>();
  const str = (idx: number): [number, number] => {
    let a = strA.get(idx);
    let b = strB.get(idx);
    if (a === undefined || b === undefined) {
      const s = strings[idx] ?? '';
      a = hashString(s, SEED_A);
      b = hashString(s, SEED_B);
      strA.set(idx, a);
      strB.set(idx, b);
    }
    return [a, b];
  };
  const functionName = new Map<number, number>();
  const functionFile = new Map<number, number>();
  for (const f of profile.function) {
    functionName.set(Number(f.id), Number(f.name));
    functionFile.set(Number(f.id), Number(f.filename));
  }
  const locA = new Map<number, number>();
  const locB = new Map<number, number>();
  for (const loc of profile.location) {
    const address = BigInt(loc.address);
    let a: number;
    let b: number;
    if (address !== 0n) {
      const lo = Number(address & 0xffffffffn);
      const hi = Number(address >> 32n);
      a = finish(mix(mix(SEED_A, lo), hi));
      b = finish(mix(mix(SEED_B, hi), lo));
    } else {
      a = SEED_A;
      b = SEED_B;
      for (const line of loc.line) {
        const fid = Number(line.functionId);
        const [na, nb] = str(functionName.get(fid) ?? 0);
        const [fa, fb] = str(functionFile.get(fid) ?? 0);
        const ln = Number(line.line);
        a = mix(mix(mix(a, na), fa), ln);
        b = mix(mix(mix(b, nb), fb), ln);
      }
      a = finish(a);
      b = finish(b);
    }
    locA.set(Number(loc.id), a);
    locB.set(Number(loc.id), b);
  }
  const keys = new Float64Array(profile.sample.length);
  for (let s = 0; s < profile.sample.length; s++) {
    const sample = profile.sample[s] as Sample;
    let a = SEED_A;
    let b = SEED_B;
    for (const id of sample.locationId) {
      a = mix(a, locA.get(Number(id)) ?? 0);
      b = mix(b, locB.get(Number(id)) ?? 0);
    }
    // labels in any order: their hashes are added, not chained
    let la = 0;
    let lb = 0;
    for (const label of sample.label) {
      const [ka, kb] = str(Number(label.key));
      let va: number;
      let vb: number;
      if (Number(label.str) !== 0) {
        [va, vb] = str(Number(label.str));
      } else {
        const num = BigInt(label.num);
        const unit = str(Number(label.numUnit));
        va = finish(mix(mix(mix(SEED_A, Number(num & 0xffffffffn)), Number((num >> 32n) & 0xffffffffn)), unit[0]));
        vb = finish(mix(mix(mix(SEED_B, Number((num >> 32n) & 0xffffffffn)), Number(num & 0xffffffffn)), unit[1]));
      }
      la = (la + finish(mix(ka, va))) | 0;
      lb = (lb + finish(mix(kb, vb))) | 0;
    }
    a = finish(mix(mix(a, la), sample.locationId.length));
    b = finish(mix(mix(b, lb), sample.label.length));
    // 32 bits of one lane and 21 of the other: exact in a double
    keys[s] = a * 2097152 + (b >>> 11);
  }
  return keys;
}
