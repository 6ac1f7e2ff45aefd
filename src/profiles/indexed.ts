import { sampleKeysOf } from './sample-keys.js';
import type { ProfileCounts } from './scan.js';
import { Cursor, int64Size, uint64BigSize, varintSize, writeInt64, writeUint64Big, writeVarint } from './wire.js';

// A profile that scanProfile accepted, read where it lies: the offsets of its
// samples, locations, functions and strings in typed arrays, a few bytes
// each, instead of an object per entry (pprof-format takes about 450 bytes a
// sample). The delta of a million-sample profile then costs tens of MiB, not
// a GiB, so the structure limits can stay generous for real profiles.

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
  /** [start, end) of each sample's bytes in `raw`, two entries a sample; the same for locations, functions and strings. */
  readonly sampleSpans: Uint32Array;
  readonly locationSpans: Uint32Array;
  readonly functionSpans: Uint32Array;
  readonly stringSpans: Uint32Array;
  /** [start, end) of the top-level fields other than samples, time and duration, merged where they touch. */
  readonly #kept: number[] = [];

  constructor(
    readonly raw: Uint8Array,
    counts: ProfileCounts,
  ) {
    this.sampleSpans = new Uint32Array(counts.samples * 2);
    this.locationSpans = new Uint32Array(counts.locations * 2);
    this.functionSpans = new Uint32Array(counts.functions * 2);
    this.stringSpans = new Uint32Array(counts.strings * 2);
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
          this.sampleSpans[ns++] = start;
          this.sampleSpans[ns++] = end;
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
          this.locationSpans[nl++] = start;
          this.locationSpans[nl++] = end;
          break;
        case 5:
          this.functionSpans[nf++] = start;
          this.functionSpans[nf++] = end;
          break;
        case 6:
          this.stringSpans[nstr++] = start;
          this.stringSpans[nstr++] = end;
          break;
      }
      const last = this.#kept.length - 1;
      if (last > 0 && this.#kept[last] === at) this.#kept[last] = end;
      else this.#kept.push(at, end);
    }
  }

  get sampleCount(): number {
    return this.sampleSpans.length / 2;
  }

  /** A string of the string table; '' past its end. */
  string(index: number): string {
    if (!(index >= 0 && index < this.stringSpans.length / 2)) return '';
    return Buffer.from(this.raw.buffer, this.raw.byteOffset, this.raw.byteLength).toString('utf8', this.stringSpans[index * 2], this.stringSpans[index * 2 + 1]);
  }

  /**
   * The key of every sample, in sample order: a 53-bit hash of its location
   * keys in order (a location's address, or its lines: function name, file
   * and line) and its labels in any order.
   */
  sampleKeys(): Float64Array {
    return sampleKeysOf(this);
  }

  /** Adds each sample's values to the row of its group: `sums[groupOf[s] * width + v]`. */
  addValues(groupOf: Uint32Array, sums: Float64Array, width: number): void {
    const raw = this.raw;
    const c = new Cursor(raw);
    for (let s = 0; s < this.sampleCount; s++) {
      c.pos = this.sampleSpans[s * 2] as number;
      const end = this.sampleSpans[s * 2 + 1] as number;
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
      c.pos = this.sampleSpans[s * 2] as number;
      const end = this.sampleSpans[s * 2 + 1] as number;
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
    const c = new Cursor(raw, this.sampleSpans[s * 2]);
    const end = this.sampleSpans[s * 2 + 1] as number;
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
