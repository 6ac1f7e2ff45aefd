// A structural check of a pprof Profile message without decoding it: every
// top-level field has the wire type profile.proto gives it, every length fits,
// and the message ends exactly at the end of the buffer. HTML, JSON, text and
// truncated bodies fail within their first bytes. It also picks up what the
// scrape path needs (sample count, time) at the cost of one pass.

export interface ProfileSummary {
  readonly sampleCount: number;
  readonly sampleTypeCount: number;
  /** time_nanos, as ms since the epoch; undefined when the profile has none. */
  readonly timeMs?: number | undefined;
  /** duration_nanos, as ms; undefined when the profile has none. */
  readonly durationMs?: number | undefined;
}

export class ProfileFormatError extends Error {
  override readonly name = 'ProfileFormatError';
}

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;

// field number -> wire type, from profile.proto
const FIELD_WIRE_TYPES: Readonly<Record<number, readonly number[]>> = {
  1: [LEN], // sample_type
  2: [LEN], // sample
  3: [LEN], // mapping
  4: [LEN], // location
  5: [LEN], // function
  6: [LEN], // string_table
  7: [VARINT], // drop_frames
  8: [VARINT], // keep_frames
  9: [VARINT], // time_nanos
  10: [VARINT], // duration_nanos
  11: [LEN], // period_type
  12: [VARINT], // period
  13: [VARINT, LEN], // comment (packed or not)
  14: [VARINT], // default_sample_type
  15: [VARINT], // doc_url
};

export function scanProfile(buf: Uint8Array): ProfileSummary {
  if (buf.length === 0) throw new ProfileFormatError('the body is empty');
  let pos = 0;
  let sampleCount = 0;
  let sampleTypeCount = 0;
  let stringCount = 0;
  let firstStringEmpty = false;
  let timeNanos: bigint | undefined;
  let durationNanos: bigint | undefined;

  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= buf.length) throw new ProfileFormatError(`truncated: a number runs past the end at byte ${pos}`);
      const b = buf[pos++] ?? 0;
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) return value;
      scale *= 128;
    }
    throw new ProfileFormatError(`not a protobuf: a number longer than 10 bytes at byte ${pos}`);
  };
  // time and duration in ns pass 2^53: read them exactly (once per profile)
  const varintBig = (): bigint => {
    let value = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (pos >= buf.length) throw new ProfileFormatError(`truncated: a number runs past the end at byte ${pos}`);
      const b = buf[pos++] ?? 0;
      value |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return value;
      shift += 7n;
    }
    throw new ProfileFormatError(`not a protobuf: a number longer than 10 bytes at byte ${pos}`);
  };

  while (pos < buf.length) {
    const at = pos;
    const key = varint();
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 0) throw new ProfileFormatError(`not a pprof profile: field number 0 at byte ${at}`);
    const allowed = FIELD_WIRE_TYPES[field];
    if (allowed ? !allowed.includes(wire) : ![VARINT, I64, LEN, I32].includes(wire)) {
      throw new ProfileFormatError(`not a pprof profile: field ${field} has wire type ${wire} at byte ${at}`);
    }
    switch (wire) {
      case VARINT:
        if (field === 9) timeNanos = varintBig();
        else if (field === 10) durationNanos = varintBig();
        else varint();
        break;
      case I64:
        pos += 8;
        break;
      case I32:
        pos += 4;
        break;
      case LEN: {
        const len = varint();
        if (pos + len > buf.length) throw new ProfileFormatError(`truncated: field ${field} at byte ${at} needs ${len} bytes, ${buf.length - pos} left`);
        if (field === 2) sampleCount++;
        else if (field === 1) sampleTypeCount++;
        else if (field === 6) {
          if (stringCount === 0) firstStringEmpty = len === 0;
          stringCount++;
        }
        pos += len;
        break;
      }
    }
    if (pos > buf.length) throw new ProfileFormatError(`truncated: field ${field} at byte ${at} runs past the end`);
  }
  if (stringCount === 0 || !firstStringEmpty) throw new ProfileFormatError('not a pprof profile: no string table starting with ""');
  if (sampleTypeCount === 0) throw new ProfileFormatError('not a pprof profile: no sample types');
  return {
    sampleCount,
    sampleTypeCount,
    timeMs: timeNanos !== undefined && timeNanos > 0n ? Number(timeNanos / 1_000_000n) : undefined,
    durationMs: durationNanos !== undefined && durationNanos > 0n ? Math.round(Number(durationNanos) / 1e6) : undefined,
  };
}
