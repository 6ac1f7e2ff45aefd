import { Cursor, eachLengthField } from './wire.js';

// The names a profile's samples are filed under, read from an opened
// profile (one the scan accepted: keys are one byte, only varints and
// lengths) without decoding the rest: what Pyroscope's naming and limits
// and Parca's profile type read.

/**
 * In one walk: the string table; the name index of each sample type; the
 * string indexes of every ValueType's type and unit (sample types, then or
 * among them the period type), as present; and (when asked) each sample's
 * string labels as key, str index pairs.
 */
export interface ProfileNames {
  readonly strings: readonly string[];
  readonly typeIndexes: readonly number[];
  readonly valueTypeIndexes: readonly number[];
  readonly sampleLabels: readonly (readonly number[])[];
}

/** Reads ProfileNames from an opened profile. */
export function readProfileNames(buf: Buffer, withSampleLabels: boolean): ProfileNames {
  const strings: string[] = [];
  const typeIndexes: number[] = [];
  const valueTypeIndexes: number[] = [];
  const sampleLabels: number[][] = [];
  eachLengthField(buf, 0, buf.length, (key, start, end) => {
    const field = key >> 3;
    if (field === 6) strings.push(buf.toString('utf8', start, end));
    else if (field === 1 || field === 11) {
      // sample_type = 1, period_type = 11: ValueType { int64 type = 1; int64 unit = 2; }
      const v = new Cursor(buf, start);
      while (v.pos < end) {
        const k = buf[v.pos++] as number;
        const value = v.varint(end);
        if (k === 0x08 || k === 0x10) valueTypeIndexes.push(value);
        if (k === 0x08 && field === 1) typeIndexes.push(value);
      }
    } else if (field === 2 && withSampleLabels) {
      const pairs = labelIndexes(buf, start, end);
      if (pairs.length > 0) sampleLabels.push(pairs);
    }
  });
  return { strings, typeIndexes, valueTypeIndexes, sampleLabels };
}

/** Names of the sample types. */
export function typeNamesOf({ strings, typeIndexes }: ProfileNames): string[] {
  return typeIndexes.map((i) => strings[i] ?? '');
}

/** The type and unit strings of the sample types and the period type: the parts of Parca's profile type. */
export function valueTypeStringsOf({ strings, valueTypeIndexes }: ProfileNames): string[] {
  return valueTypeIndexes.map((i) => strings[i] ?? '');
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
