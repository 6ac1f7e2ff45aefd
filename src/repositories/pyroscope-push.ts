import { createHash } from 'node:crypto';
import { create, toBinary } from '@bufbuild/protobuf';
import { DEFAULT_PROFILE_LIMITS, formatSize } from '../config/index.js';
import type { ProfileLimits } from '../config/index.js';
import { openProfile } from '../profiles/decode.js';
import type { ScrapedProfile } from '../profiles/profile.js';
import { readProfileNames, typeNamesOf } from '../profiles/names.js';
import type { ProfileNames } from '../profiles/names.js';
import { PushRequestSchema } from '../proto/gen/push/v1/push_pb.js';
import { seriesLabelsProblem } from './pyroscope-labels.js';

// What a Pyroscope push carries: the names read from a profile (its sample
// types, its samples' labels: src/profiles/names.ts), the limits Pyroscope's distributor puts on a
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
