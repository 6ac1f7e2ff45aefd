import { gzipSync } from 'node:zlib';
import { lenField, varintBytes, varintField } from './wire-fields.js';

// Profiles that are small on the wire and huge once decoded, written field
// by field (pprof-format would have to build every object first, which is
// the very cost these profiles exist to provoke). Repeated entries are
// identical, so gzip shrinks them about a thousandfold.

/** How many of each thing the profile holds; everything else is one of it. */
export interface BombShape {
  readonly samples?: number;
  /** Location ids in each sample. */
  readonly stackDepth?: number;
  /** Labels in each sample. */
  readonly labelsPerSample?: number;
  readonly sampleTypes?: number;
  readonly locations?: number;
  /** Lines in each location. */
  readonly linesPerLocation?: number;
  readonly functions?: number;
  readonly mappings?: number;
  /** Strings beyond the three the profile needs. */
  readonly strings?: number;
  /** Length of each of those strings. */
  readonly stringLength?: number;
  /** Comments (string indexes), packed. */
  readonly comments?: number;
  /** Name of the sample types ("samples" by default; "alloc_space" makes the profile cumulative, so Pyroscope computes deltas of it). */
  readonly sampleType?: string;
  /** Each sample carries a numeric label of its own index, so no two merge (and gzip shrinks them far less). */
  readonly distinct?: boolean;
}

function packed(number: number, count: number, value = 1): Buffer {
  return lenField(number, Buffer.alloc(count, value));
}

/** `count` copies of `chunk`, without building `count` buffers. */
function repeat(chunk: Buffer, count: number): Buffer {
  if (count === 0) return Buffer.alloc(0);
  return Buffer.alloc(chunk.length * count).fill(chunk);
}

/** A raw (not gzipped) pprof Profile of the given shape; it decodes with pprof-format. */
export function bombProfile(shape: BombShape): Buffer {
  const types = shape.sampleTypes ?? 1;
  const depth = shape.stackDepth ?? 1;
  const label = lenField(3, Buffer.concat([varintField(1, 1), varintField(2, 2)]));
  const sampleBody = Buffer.concat([packed(1, depth), packed(2, types), repeat(label, shape.labelsPerSample ?? 0)]);
  const samples = shape.distinct ? distinctSamples(sampleBody, shape.samples ?? 1) : repeat(lenField(2, sampleBody), shape.samples ?? 1);
  const line = lenField(4, Buffer.concat([varintField(1, 1), varintField(2, 1)]));
  const location = lenField(4, Buffer.concat([varintField(1, 1), varintField(2, 1), repeat(line, shape.linesPerLocation ?? 1)]));
  const fn = lenField(5, Buffer.concat([varintField(1, 1), varintField(2, 1), varintField(4, 2)]));
  const mapping = lenField(3, Buffer.concat([varintField(1, 1), varintField(5, 2)]));
  const extra = lenField(6, Buffer.alloc(shape.stringLength ?? 1, 0x61));
  return Buffer.concat([
    repeat(lenField(1, Buffer.concat([varintField(1, 1), varintField(2, 2)])), types),
    samples,
    repeat(mapping, shape.mappings ?? 1),
    repeat(location, shape.locations ?? 1),
    repeat(fn, shape.functions ?? 1),
    lenField(6, Buffer.alloc(0)),
    lenField(6, Buffer.from(shape.sampleType ?? 'samples')),
    lenField(6, Buffer.from('count')),
    repeat(extra, shape.strings ?? 0),
    shape.comments ? packed(13, shape.comments) : Buffer.alloc(0),
    // time_nanos 2026-01-01T00:00:00Z
    varintField(9, 1_767_225_600_000_000_000),
  ]);
}

/** `count` samples of `body`, each with a label {key: string 1, num: its index} appended. */
function distinctSamples(body: Buffer, count: number): Buffer {
  const out = Buffer.alloc(count * (body.length + 24));
  let pos = 0;
  for (let i = 0; i < count; i++) {
    const num = varintBytes(i);
    const label = [0x1a, 3 + num.length, 0x08, 0x01, 0x18, ...num];
    for (const b of [0x12, ...varintBytes(body.length + label.length)]) out[pos++] = b;
    pos += body.copy(out, pos);
    for (const b of label) out[pos++] = b;
  }
  return out.subarray(0, pos);
}

/**
 * 3,000,000 identical one-frame samples: about 24 MB of protobuf in a gzip
 * of a few tens of KB, the shape that took the daemon past a GiB on decode.
 */
export function sampleBomb(samples = 3_000_000): Buffer {
  let bomb = made.get(samples);
  if (!bomb) {
    bomb = gzipSync(bombProfile({ samples }), { level: 9 });
    made.set(samples, bomb);
  }
  return bomb;
}

// gzip at level 9 takes most of a second for the full bomb: make each size once
const made = new Map<number, Buffer>();
