import type { ProfileCounts } from './scan.js';
import { Cursor, int64Size, uint64BigSize, varintSize, writeInt64, writeUint64Big, writeVarint } from './wire.js';

// A profile that scanProfile accepted, read where it lies: the offsets of its
// samples, locations, functions and strings in typed arrays, a few bytes
// each, instead of an object per entry (pprof-format takes about 450 bytes a
// sample). The delta of a million-sample profile then costs tens of MiB, not
// a GiB, so the structure limits can stay generous for real profiles.

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

/** Index of an entry by its id (uint64, as a number); the last entry with an id wins. */
class IdIndex {
  readonly #dense: boolean;
  readonly #count: number;
  readonly #map: Map<number, number> | undefined;

  constructor(ids: Float64Array) {
    this.#count = ids.length;
    // Go numbers them 1..n: no map needed
    let dense = true;
    for (let i = 0; i < ids.length && dense; i++) dense = ids[i] === i + 1;
    this.#dense = dense;
    if (!dense) {
      this.#map = new Map();
      for (let i = 0; i < ids.length; i++) this.#map.set(ids[i] as number, i);
    }
  }

  get(id: number): number {
    if (this.#dense) return id >= 1 && id <= this.#count && Number.isInteger(id) ? id - 1 : -1;
    return this.#map?.get(id) ?? -1;
  }
}

// values past int64 (sums of huge values) are held to its range when written
const MAX_INT64 = 9223372036854774784;

function clampInt64(v: number): number {
  return v > MAX_INT64 ? MAX_INT64 : v < -MAX_INT64 ? -MAX_INT64 : v;
}

export class IndexedProfile {
  /** string_table index of each sample type's name. */
  readonly sampleTypes: number[] = [];
  /** time_nanos (0n when the profile has none). */
  timeNanos = 0n;
  /** start, end of each sample's bytes. */
  readonly #samples: Uint32Array;
  readonly #locations: Uint32Array;
  readonly #functions: Uint32Array;
  readonly #strings: Uint32Array;
  /** [start, end) of the top-level fields other than samples, time and duration, merged where they touch. */
  readonly #kept: number[] = [];
  readonly #hashA: Uint32Array;
  readonly #hashB: Uint32Array;
  readonly #hashed: Uint8Array;

  constructor(
    readonly raw: Uint8Array,
    counts: ProfileCounts,
  ) {
    this.#samples = new Uint32Array(counts.samples * 2);
    this.#locations = new Uint32Array(counts.locations * 2);
    this.#functions = new Uint32Array(counts.functions * 2);
    this.#strings = new Uint32Array(counts.strings * 2);
    this.#hashA = new Uint32Array(counts.strings);
    this.#hashB = new Uint32Array(counts.strings);
    this.#hashed = new Uint8Array(counts.strings);
    let ns = 0;
    let nl = 0;
    let nf = 0;
    let nstr = 0;
    const c = new Cursor(raw);
    while (c.pos < raw.length) {
      const at = c.pos;
      const key = raw[c.pos++] as number;
      const field = key >> 3;
      let start = c.pos;
      if ((key & 7) === 0) {
        if (field === 9) this.timeNanos = c.bigint();
        else c.varint();
      } else {
        const len = c.varint();
        start = c.pos;
        c.pos += len;
      }
      const end = c.pos;
      switch (field) {
        case 2:
          this.#samples[ns++] = start;
          this.#samples[ns++] = end;
          continue;
        case 9:
        case 10:
          continue;
        case 1: {
          const v = new Cursor(raw, start);
          let type = 0;
          while (v.pos < end) {
            const k = raw[v.pos++] as number;
            if (k === 0x08) type = v.varint();
            else if ((k & 7) === 0) v.varint();
            else v.skipLength();
          }
          this.sampleTypes.push(type);
          break;
        }
        case 4:
          this.#locations[nl++] = start;
          this.#locations[nl++] = end;
          break;
        case 5:
          this.#functions[nf++] = start;
          this.#functions[nf++] = end;
          break;
        case 6:
          this.#strings[nstr++] = start;
          this.#strings[nstr++] = end;
          break;
      }
      const last = this.#kept.length - 1;
      if (last > 0 && this.#kept[last] === at) this.#kept[last] = end;
      else this.#kept.push(at, end);
    }
  }

  get sampleCount(): number {
    return this.#samples.length / 2;
  }

  /** A string of the string table; '' past its end. */
  string(index: number): string {
    if (!(index >= 0 && index < this.#hashed.length)) return '';
    return Buffer.from(this.raw.buffer, this.raw.byteOffset, this.raw.byteLength).toString('utf8', this.#strings[index * 2], this.#strings[index * 2 + 1]);
  }

  /** Hashes of a string's bytes in the two lanes; each string is hashed once, however often it is named. */
  #stringHash(index: number): number {
    if (!(index >= 0 && index < this.#hashed.length)) index = 0;
    if (this.#hashed[index] === 0) {
      const start = this.#strings[index * 2] as number;
      const end = this.#strings[index * 2 + 1] as number;
      let a = SEED_A;
      let b = SEED_B;
      for (let i = start; i < end; i++) {
        a = mix(a, this.raw[i] as number);
        b = mix(b, this.raw[i] as number);
      }
      this.#hashA[index] = finish(a ^ (end - start));
      this.#hashB[index] = finish(b ^ (end - start));
      this.#hashed[index] = 1;
    }
    return index;
  }

  #a(index: number): number {
    return this.#hashA[this.#stringHash(index)] ?? 0;
  }

  #b(index: number): number {
    return this.#hashB[this.#stringHash(index)] ?? 0;
  }

  /**
   * The key of every sample, in sample order: a 53-bit hash of its location
   * keys in order (a location's address, or its lines: function name, file
   * and line) and its labels in any order.
   */
  sampleKeys(): Float64Array {
    const raw = this.raw;
    const nf = this.#functions.length / 2;
    const fnIds = new Float64Array(nf);
    const fnName = new Uint32Array(nf);
    const fnFile = new Uint32Array(nf);
    const c = new Cursor(raw);
    for (let f = 0; f < nf; f++) {
      c.pos = this.#functions[f * 2] as number;
      const end = this.#functions[f * 2 + 1] as number;
      while (c.pos < end) {
        const k = raw[c.pos++] as number;
        if (k === 0x08) fnIds[f] = c.varint();
        else if (k === 0x10) fnName[f] = c.varint();
        else if (k === 0x20) fnFile[f] = c.varint();
        else if ((k & 7) === 0) c.varint();
        else c.skipLength();
      }
    }
    const functions = new IdIndex(fnIds);

    const nl = this.#locations.length / 2;
    const locIds = new Float64Array(nl);
    const locA = new Uint32Array(nl);
    const locB = new Uint32Array(nl);
    for (let l = 0; l < nl; l++) {
      c.pos = this.#locations[l * 2] as number;
      const end = this.#locations[l * 2 + 1] as number;
      let lo = 0;
      let hi = 0;
      let a = SEED_A;
      let b = SEED_B;
      while (c.pos < end) {
        const k = raw[c.pos++] as number;
        if (k === 0x08) locIds[l] = c.varint();
        else if (k === 0x18) {
          c.varint64();
          lo = c.lo;
          hi = c.hi;
        } else if (k === 0x22) {
          const lineEnd = c.varint() + c.pos;
          let fid = 0;
          let line = 0;
          while (c.pos < lineEnd) {
            const lk = raw[c.pos++] as number;
            if (lk === 0x08) fid = c.varint();
            else if (lk === 0x10) line = c.int64();
            else if ((lk & 7) === 0) c.varint();
            else c.skipLength();
          }
          const fi = functions.get(fid);
          const name = fi < 0 ? 0 : (fnName[fi] as number);
          const file = fi < 0 ? 0 : (fnFile[fi] as number);
          a = mix(mix(mix(a, this.#a(name)), this.#a(file)), line);
          b = mix(mix(mix(b, this.#b(name)), this.#b(file)), line);
        } else if ((k & 7) === 0) c.varint();
        else c.skipLength();
      }
      if (lo !== 0 || hi !== 0) {
        locA[l] = finish(mix(mix(SEED_A, lo), hi));
        locB[l] = finish(mix(mix(SEED_B, hi), lo));
      } else {
        locA[l] = finish(a);
        locB[l] = finish(b);
      }
    }
    const locations = new IdIndex(locIds);

    const n = this.sampleCount;
    const keys = new Float64Array(n);
    for (let s = 0; s < n; s++) {
      c.pos = this.#samples[s * 2] as number;
      const end = this.#samples[s * 2 + 1] as number;
      let a = SEED_A;
      let b = SEED_B;
      let frames = 0;
      let labels = 0;
      // labels in any order: their hashes are added, not chained
      let la = 0;
      let lb = 0;
      while (c.pos < end) {
        const k = raw[c.pos++] as number;
        if (k === 0x08 || k === 0x0a) {
          // one id, or a packed run of them
          const fieldEnd = k === 0x0a ? c.varint() + c.pos : -1;
          while (fieldEnd < 0 || c.pos < fieldEnd) {
            const li = locations.get(c.varint());
            a = mix(a, li < 0 ? 0 : (locA[li] as number));
            b = mix(b, li < 0 ? 0 : (locB[li] as number));
            frames++;
            if (fieldEnd < 0) break;
          }
        } else if (k === 0x1a) {
          const labelEnd = c.varint() + c.pos;
          let key = 0;
          let str = 0;
          let lo = 0;
          let hi = 0;
          let unit = 0;
          while (c.pos < labelEnd) {
            const lk = raw[c.pos++] as number;
            if (lk === 0x08) key = c.varint();
            else if (lk === 0x10) str = c.varint();
            else if (lk === 0x18) {
              c.varint64();
              lo = c.lo;
              hi = c.hi;
            } else if (lk === 0x20) unit = c.varint();
            else if ((lk & 7) === 0) c.varint();
            else c.skipLength();
          }
          const va = str !== 0 ? this.#a(str) : finish(mix(mix(mix(SEED_A, lo), hi), this.#a(unit)));
          const vb = str !== 0 ? this.#b(str) : finish(mix(mix(mix(SEED_B, hi), lo), this.#b(unit)));
          la = (la + finish(mix(this.#a(key), va))) | 0;
          lb = (lb + finish(mix(this.#b(key), vb))) | 0;
          labels++;
        } else if ((k & 7) === 0) c.varint();
        else c.skipLength();
      }
      a = finish(mix(mix(a, la), frames));
      b = finish(mix(mix(b, lb), labels));
      // 32 bits of one lane and 21 of the other: exact in a double
      keys[s] = a * 2097152 + (b >>> 11);
    }
    return keys;
  }

  /** Adds each sample's values to the row of its group: `sums[groupOf[s] * width + v]`. */
  addValues(groupOf: Uint32Array, sums: Float64Array, width: number): void {
    const raw = this.raw;
    const c = new Cursor(raw);
    for (let s = 0; s < this.sampleCount; s++) {
      c.pos = this.#samples[s * 2] as number;
      const end = this.#samples[s * 2 + 1] as number;
      const row = (groupOf[s] as number) * width;
      let v = 0;
      while (c.pos < end) {
        const k = raw[c.pos++] as number;
        if (k === 0x10 || k === 0x12) {
          const fieldEnd = k === 0x12 ? c.varint() + c.pos : -1;
          while (fieldEnd < 0 || c.pos < fieldEnd) {
            const value = c.int64();
            if (v < width) sums[row + v] = (sums[row + v] as number) + value;
            v++;
            if (fieldEnd < 0) break;
          }
        } else if ((k & 7) === 0) c.varint();
        else c.skipLength();
      }
    }
  }

  /**
   * This profile with other samples: the samples `emit` as they are but for
   * their values, which become their group's row (`sums[groupOf[s] * width …]`);
   * and another time and duration. Every other field is copied as it is.
   */
  encodeWith(emit: Uint32Array, groupOf: Uint32Array, sums: Float64Array, width: number, timeNs: bigint, durationNs: bigint): Buffer {
    const raw = this.raw;
    let size = 0;
    for (let i = 0; i < this.#kept.length; i += 2) size += (this.#kept[i + 1] as number) - (this.#kept[i] as number);
    const bodies = new Float64Array(emit.length);
    for (let i = 0; i < emit.length; i++) {
      const row = (groupOf[emit[i] as number] as number) * width;
      let values = 0;
      for (let v = 0; v < width; v++) values += int64Size(clampInt64(sums[row + v] as number));
      const body = this.#keptSampleBytes(emit[i] as number) + 1 + varintSize(values) + values;
      bodies[i] = body;
      size += 1 + varintSize(body) + body;
    }
    size += 1 + uint64BigSize(timeNs) + 1 + uint64BigSize(durationNs);

    const out = Buffer.allocUnsafe(size);
    let pos = 0;
    for (let i = 0; i < this.#kept.length; i += 2) {
      out.set(raw.subarray(this.#kept[i], this.#kept[i + 1]), pos);
      pos += (this.#kept[i + 1] as number) - (this.#kept[i] as number);
    }
    const c = new Cursor(raw);
    for (let i = 0; i < emit.length; i++) {
      const s = emit[i] as number;
      out[pos++] = 0x12;
      pos = writeVarint(out, pos, bodies[i] as number);
      c.pos = this.#samples[s * 2] as number;
      const end = this.#samples[s * 2 + 1] as number;
      while (c.pos < end) {
        const at = c.pos;
        const k = raw[c.pos++] as number;
        if ((k & 7) === 0) c.varint();
        else c.skipLength();
        if (k !== 0x10 && k !== 0x12) {
          out.set(raw.subarray(at, c.pos), pos);
          pos += c.pos - at;
        }
      }
      const row = (groupOf[s] as number) * width;
      let values = 0;
      for (let v = 0; v < width; v++) values += int64Size(clampInt64(sums[row + v] as number));
      out[pos++] = 0x12;
      pos = writeVarint(out, pos, values);
      for (let v = 0; v < width; v++) pos = writeInt64(out, pos, clampInt64(sums[row + v] as number));
    }
    out[pos++] = 0x48; // time_nanos
    pos = writeUint64Big(out, pos, timeNs);
    out[pos++] = 0x50; // duration_nanos
    pos = writeUint64Big(out, pos, durationNs);
    return out.subarray(0, pos);
  }

  /** Bytes of a sample's fields other than its values. */
  #keptSampleBytes(s: number): number {
    const raw = this.raw;
    const c = new Cursor(raw, this.#samples[s * 2]);
    const end = this.#samples[s * 2 + 1] as number;
    let kept = 0;
    while (c.pos < end) {
      const at = c.pos;
      const k = raw[c.pos++] as number;
      if ((k & 7) === 0) c.varint();
      else c.skipLength();
      if (k !== 0x10 && k !== 0x12) kept += c.pos - at;
    }
    return kept;
  }
}
