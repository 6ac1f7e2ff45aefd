import { createHash } from 'node:crypto';
import { create, toBinary } from '@bufbuild/protobuf';
import { DEFAULT_PROFILE_LIMITS, formatSize } from '../config/index.js';
import type { ProfileLimits } from '../config/index.js';
import { openProfile } from '../profiles/decode.js';
import type { ScrapedProfile } from '../profiles/profile.js';
import { Cursor, eachLengthField } from '../profiles/wire.js';
import { PushRequestSchema } from '../proto/gen/push/v1/push_pb.js';
import { seriesLabelsProblem } from './pyroscope-labels.js';

// What a Pyroscope push carries: the names read from a profile (its sample
// types, its samples' labels), the limits Pyroscope's distributor puts on a
// series, and the push.v1.PushRequest itself (proto/pyroscope/push/v1/push.proto,
// encoded by the code generated from it). This module loads only with a
// pyroscope repository.

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
export function typeNamesOf({ strings, typeIndexes }: ProfileNames): string[] {
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

/** One series, the profile as its one sample: PushRequest{series: [{labels, samples: [{raw_profile, ID}]}]}. */
export function encodePushRequest(labels: readonly (readonly [string, string])[], rawProfile: Uint8Array, id: string): Buffer {
  const request = create(PushRequestSchema, {
    series: [{ labels: labels.map(([name, value]) => ({ name, value })), samples: [{ rawProfile, ID: id }] }],
  });
  const bytes = toBinary(PushRequestSchema, request);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A UUID derived from what identifies a scrape, so a retried push carries the same ID. */
export function profileId(profile: ScrapedProfile): string {
  const h = createHash('sha256').update(`${profile.targetId}\0${profile.type}\0${profile.time}`).digest();
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x40;
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}
