import type { ProfileLimits } from '../config/index.js';
import { limitError, ProfileFormatError } from './errors.js';
import { Cursor, MAX_VARINT_BYTES, VarintError } from './wire.js';

// A structural check of a pprof Profile message in one pass, building no
// objects: every field has the wire type profile.proto gives it, every length
// fits, every message ends where its length says, and what a decoder would
// allocate is counted and held to the limits before anything decodes it.
// HTML, JSON, text and truncated bodies fail within their first bytes.
//
// The pass goes into samples and locations (and the small messages in them)
// rather than bounding their bytes: decoding turns one byte of a packed
// location id into an 8-byte array slot, but two bytes of an empty label or
// line into a 60-byte object, so no byte budget is both generous for real
// profiles and tight for crafted ones. Counting each kind costs one more look
// at bytes that gunzip has just written, and gives a reason that names what
// there is too much of.
//
// It also holds the input to what pprof-format decodes faithfully: that
// decoder reads a field key as one byte and knows only varint and
// length-delimited values, so a longer key (a field past 15, or a padded one)
// would be read differently there than here and could hide samples from
// this count. Such keys are refused; profile.proto has no field past 15.

export interface ProfileCounts {
  readonly samples: number;
  readonly sampleTypes: number;
  /** Location ids in all samples. */
  readonly frames: number;
  /** Labels in all samples. */
  readonly labels: number;
  readonly locations: number;
  /** Lines in all locations. */
  readonly lines: number;
  readonly functions: number;
  readonly mappings: number;
  readonly strings: number;
  /** Bytes of all strings of the string table. */
  readonly stringTableSize: number;
  readonly comments: number;
}

export interface ProfileSummary {
  readonly sampleCount: number;
  readonly sampleTypeCount: number;
  /** time_nanos, as ms since the epoch; undefined when the profile has none. */
  readonly timeMs?: number | undefined;
  /** duration_nanos, as ms; undefined when the profile has none. */
  readonly durationMs?: number | undefined;
  readonly counts: ProfileCounts;
}

const VARINT = 0;
const LEN = 2;

// The small messages whose known fields are all varints, with how many fields they have.
const VALUE_TYPE = { name: 'sample type', fields: 2 };
const LABEL = { name: 'label', fields: 4 };
const MAPPING = { name: 'mapping', fields: 10 };
const LINE = { name: 'line', fields: 3 };
const FUNCTION = { name: 'function', fields: 5 };
type ScalarMessage = typeof VALUE_TYPE;

const TOP_LEVEL_VARINTS = new Set([7, 8, 9, 10, 12, 14, 15]);

export function scanProfile(buf: Uint8Array, limits: ProfileLimits): ProfileSummary {
  try {
    return scan(buf, limits);
  } catch (err) {
    if (err instanceof VarintError) throw new ProfileFormatError(err.message, { cause: err });
    throw err;
  }
}

function scan(buf: Uint8Array, limits: ProfileLimits): ProfileSummary {
  if (buf.length === 0) throw new ProfileFormatError('the body is empty');
  const c = new Cursor(buf);
  let samples = 0;
  let sampleTypes = 0;
  let frames = 0;
  let labels = 0;
  let locations = 0;
  let lines = 0;
  let functions = 0;
  let mappings = 0;
  let strings = 0;
  let stringTableSize = 0;
  let comments = 0;
  let firstStringEmpty = false;
  // every sample has one value per sample type; the types may come after the samples
  let valuesPerSample = -1;
  let unevenSample = -1;
  let unevenValues = 0;
  let timeNanos: bigint | undefined;
  let durationNanos: bigint | undefined;

  /** The key at c.pos, as field * 8 + wire type; one byte, as pprof-format reads it. */
  const key = (where: string): number => {
    const at = c.pos;
    const b = buf[c.pos++] as number;
    if (b >= 0x80) throw new ProfileFormatError(`not a pprof profile: ${where}a field key at byte ${at} is longer than one byte (a field past 15, which profile.proto does not have)`);
    if (b < 8) throw new ProfileFormatError(`not a pprof profile: ${where}field number 0 at byte ${at}`);
    return b;
  };
  /** The end of the length-delimited value at c.pos, checked against the end of its message. */
  const lengthEnd = (end: number, field: number, at: number, where: string): number => {
    const len = c.varint(end);
    if (len > end - c.pos) throw new ProfileFormatError(`truncated: ${where}field ${field} at byte ${at} needs ${len} bytes, ${end - c.pos} left`);
    return c.pos + len;
  };
  /** Skips a field no decoder reads: varints and lengths only (pprof-format knows no other wire type). */
  const skip = (wire: number, field: number, end: number, at: number, where: string): void => {
    if (wire === VARINT) c.varint(end);
    else if (wire === LEN) c.pos = lengthEnd(end, field, at, where);
    else throw new ProfileFormatError(`not a pprof profile: ${where}field ${field} has wire type ${wire} at byte ${at}`);
  };
  const wrongWire = (where: string, field: number, wire: number, at: number): ProfileFormatError =>
    new ProfileFormatError(`not a pprof profile: ${where}field ${field} has wire type ${wire} at byte ${at}`);
  /** Number of varints in a packed field ending at end; c.pos ends there. */
  const packed = (end: number): number => {
    let n = 0;
    let run = 0;
    while (c.pos < end) {
      if ((buf[c.pos++] as number) < 0x80) {
        n++;
        run = 0;
      } else if (++run >= MAX_VARINT_BYTES) throw new ProfileFormatError(`not a protobuf: a number longer than ${MAX_VARINT_BYTES} bytes at byte ${c.pos}`);
    }
    if (run > 0) throw new ProfileFormatError(`truncated: a number runs past the end of a packed field at byte ${c.pos}`);
    return n;
  };
  const scalarMessage = (end: number, message: ScalarMessage): void => {
    const where = `in a ${message.name}, `;
    while (c.pos < end) {
      const at = c.pos;
      const k = key(where);
      const field = k >> 3;
      const wire = k & 7;
      if (field <= message.fields) {
        if (wire !== VARINT) throw wrongWire(where, field, wire, at);
        c.varint(end);
      } else skip(wire, field, end, at, where);
    }
  };
  const sample = (end: number, index: number): void => {
    let values = 0;
    while (c.pos < end) {
      const at = c.pos;
      const k = key('in a sample, ');
      const field = k >> 3;
      const wire = k & 7;
      if (field === 1 || field === 2) {
        let n: number;
        if (wire === VARINT) {
          c.varint(end);
          n = 1;
        } else if (wire === LEN) n = packed(lengthEnd(end, field, at, 'in a sample, '));
        else throw wrongWire('in a sample, ', field, wire, at);
        if (field === 1) frames += n;
        else values += n;
      } else if (field === 3) {
        if (wire !== LEN) throw wrongWire('in a sample, ', field, wire, at);
        scalarMessage(lengthEnd(end, field, at, 'in a sample, '), LABEL);
        labels++;
      } else skip(wire, field, end, at, 'in a sample, ');
    }
    if (valuesPerSample < 0) valuesPerSample = values;
    else if (values !== valuesPerSample && unevenSample < 0) {
      unevenSample = index;
      unevenValues = values;
    }
  };
  const location = (end: number): void => {
    while (c.pos < end) {
      const at = c.pos;
      const k = key('in a location, ');
      const field = k >> 3;
      const wire = k & 7;
      if (field === 4) {
        if (wire !== LEN) throw wrongWire('in a location, ', field, wire, at);
        scalarMessage(lengthEnd(end, field, at, 'in a location, '), LINE);
        lines++;
      } else if (field <= 5) {
        if (wire !== VARINT) throw wrongWire('in a location, ', field, wire, at);
        c.varint(end);
      } else skip(wire, field, end, at, 'in a location, ');
    }
  };

  const size = buf.length;
  while (c.pos < size) {
    const at = c.pos;
    const k = key('');
    const field = k >> 3;
    const wire = k & 7;
    if (wire !== VARINT && wire !== LEN) throw wrongWire('', field, wire, at);
    if (TOP_LEVEL_VARINTS.has(field) || (field === 13 && wire === VARINT)) {
      if (wire !== VARINT) throw wrongWire('', field, wire, at);
      // time and duration in ns pass 2^53: read them exactly (once per profile)
      if (field === 9) timeNanos = c.unsigned(size);
      else if (field === 10) durationNanos = c.unsigned(size);
      else c.varint(size);
      if (field === 13) comments++;
      continue;
    }
    if (wire !== LEN) throw wrongWire('', field, wire, at);
    const end = lengthEnd(size, field, at, '');
    switch (field) {
      case 1:
        scalarMessage(end, VALUE_TYPE);
        sampleTypes++;
        break;
      case 2:
        // past the limit the profile is refused anyway: count the rest without looking inside
        if (samples < limits.max_samples) sample(end, samples);
        else c.pos = end;
        samples++;
        break;
      case 3:
        scalarMessage(end, MAPPING);
        mappings++;
        break;
      case 4:
        if (locations < limits.max_locations) location(end);
        else c.pos = end;
        locations++;
        break;
      case 5:
        scalarMessage(end, FUNCTION);
        functions++;
        break;
      case 6:
        if (strings === 0) firstStringEmpty = end === c.pos;
        strings++;
        stringTableSize += end - c.pos;
        c.pos = end;
        break;
      case 11:
        scalarMessage(end, VALUE_TYPE);
        break;
      case 13:
        comments += packed(end);
        break;
    }
  }
  if (strings === 0 || !firstStringEmpty) throw new ProfileFormatError('not a pprof profile: no string table starting with ""');
  if (sampleTypes === 0) throw new ProfileFormatError('not a pprof profile: no sample types');
  if (samples > 0 && valuesPerSample !== sampleTypes) throw new ProfileFormatError(`not a pprof profile: sample 0 has ${valuesPerSample} values for ${sampleTypes} sample types`);
  if (unevenSample >= 0) throw new ProfileFormatError(`not a pprof profile: sample ${unevenSample} has ${unevenValues} values for ${sampleTypes} sample types`);

  const counts: ProfileCounts = { samples, sampleTypes, frames, labels, locations, lines, functions, mappings, strings, stringTableSize, comments };
  checkLimits(counts, limits);
  return {
    sampleCount: samples,
    sampleTypeCount: sampleTypes,
    timeMs: timeNanos !== undefined && timeNanos > 0n ? Number(timeNanos / 1_000_000n) : undefined,
    durationMs: durationNanos !== undefined && durationNanos > 0n ? Math.round(Number(durationNanos) / 1e6) : undefined,
    counts,
  };
}

function checkLimits(c: ProfileCounts, limits: ProfileLimits): void {
  const checks: [keyof ProfileLimits, number, string][] = [
    ['max_samples', c.samples, 'samples'],
    ['max_sample_types', c.sampleTypes, 'sample types'],
    ['max_frames', c.frames, 'frames (location ids in samples)'],
    ['max_labels', c.labels, 'labels in samples'],
    ['max_locations', c.locations, 'locations'],
    ['max_lines', c.lines, 'lines in locations'],
    ['max_functions', c.functions, 'functions'],
    ['max_mappings', c.mappings, 'mappings'],
    ['max_strings', c.strings, 'strings'],
    // each comment names a string: a profile has no use for more comments than it may have strings
    ['max_strings', c.comments, 'comments'],
    ['max_string_table_size', c.stringTableSize, 'a string table'],
  ];
  for (const [limit, count, what] of checks) {
    if (count > limits[limit]) throw limitError(limit, count, limits[limit], what);
  }
}
