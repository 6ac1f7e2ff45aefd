import { Cursor } from './wire.js';
import type { IndexedProfile } from './indexed.js';

// The keys by which a delta matches a sample with the same sample of the
// previous profile: two 32-bit lanes of murmur3-style hashing over the
// profile's bytes where they lie, no object per sample or string.

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

/** Hashes of each string's bytes in the two lanes; each string is hashed once, however often it is named. */
class StringHashes {
  readonly #raw: Uint8Array;
  readonly #spans: Uint32Array;
  readonly #hashA: Uint32Array;
  readonly #hashB: Uint32Array;
  readonly #hashed: Uint8Array;

  constructor(raw: Uint8Array, spans: Uint32Array) {
    const count = spans.length / 2;
    this.#raw = raw;
    this.#spans = spans;
    this.#hashA = new Uint32Array(count);
    this.#hashB = new Uint32Array(count);
    this.#hashed = new Uint8Array(count);
  }

  a(index: number): number {
    return this.#hashA[this.#hash(index)] ?? 0;
  }

  b(index: number): number {
    return this.#hashB[this.#hash(index)] ?? 0;
  }

  #hash(index: number): number {
    if (!(index >= 0 && index < this.#hashed.length)) index = 0;
    if (this.#hashed[index] === 0) {
      const start = this.#spans[index * 2] as number;
      const end = this.#spans[index * 2 + 1] as number;
      let a = SEED_A;
      let b = SEED_B;
      for (let i = start; i < end; i++) {
        a = mix(a, this.#raw[i] as number);
        b = mix(b, this.#raw[i] as number);
      }
      this.#hashA[index] = finish(a ^ (end - start));
      this.#hashB[index] = finish(b ^ (end - start));
      this.#hashed[index] = 1;
    }
    return index;
  }
}

/** See IndexedProfile.sampleKeys. */
export function sampleKeysOf(profile: IndexedProfile): Float64Array {
  const raw = profile.raw;
  const strings = new StringHashes(raw, profile.stringSpans);
  const nf = profile.functionSpans.length / 2;
  const fnIds = new Float64Array(nf);
  const fnName = new Uint32Array(nf);
  const fnFile = new Uint32Array(nf);
  const c = new Cursor(raw);
  for (let f = 0; f < nf; f++) {
    c.pos = profile.functionSpans[f * 2] as number;
    const end = profile.functionSpans[f * 2 + 1] as number;
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

  const nl = profile.locationSpans.length / 2;
  const locIds = new Float64Array(nl);
  const locA = new Uint32Array(nl);
  const locB = new Uint32Array(nl);
  for (let l = 0; l < nl; l++) {
    c.pos = profile.locationSpans[l * 2] as number;
    const end = profile.locationSpans[l * 2 + 1] as number;
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
        a = mix(mix(mix(a, strings.a(name)), strings.a(file)), line);
        b = mix(mix(mix(b, strings.b(name)), strings.b(file)), line);
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

  const n = profile.sampleCount;
  const keys = new Float64Array(n);
  for (let s = 0; s < n; s++) {
    c.pos = profile.sampleSpans[s * 2] as number;
    const end = profile.sampleSpans[s * 2 + 1] as number;
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
        const va = str !== 0 ? strings.a(str) : finish(mix(mix(mix(SEED_A, lo), hi), strings.a(unit)));
        const vb = str !== 0 ? strings.b(str) : finish(mix(mix(mix(SEED_B, hi), lo), strings.b(unit)));
        la = (la + finish(mix(strings.a(key), va))) | 0;
        lb = (lb + finish(mix(strings.b(key), vb))) | 0;
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
