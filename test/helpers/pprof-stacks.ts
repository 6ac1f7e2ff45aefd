/**
 * Reading pprof samples the way a person compares them: by the function
 * names and lines of their stacks and by their labels, independent of the
 * ids and order a profile happens to use; and counting what a profile holds
 * as the scan counts it.
 */
import {gunzipSync} from 'node:zlib';
import {Profile} from 'pprof-format';
import type {ProfileCounts} from '../../src/profiles/scan.js';

export const decodePprof = (b: Uint8Array): Profile => Profile.decode(b[0] === 0x1f && b[1] === 0x8b ? gunzipSync(b) : b);

/** A key for a sample that does not depend on ids or order: function names and lines of its stack, and its labels. */
export function stackKey(p: Profile, sampleIndex: number): string {
  const s = p.sample[sampleIndex]!;
  const str = (i: unknown): string => p.stringTable.strings[Number(i)] ?? '';
  const fn = new Map(p.function.map((f) => [Number(f.id), str(f.name)]));
  const loc = new Map(p.location.map((l) => [Number(l.id), l.line.map((ln) => `${fn.get(Number(ln.functionId))}:${Number(ln.line)}`).join('>')]));
  const labels = s.label.map((l) => `${str(l.key)}=${Number(l.str) ? str(l.str) : `${Number(l.num)}${str(l.numUnit)}`}`).sort();
  return `${s.locationId.map((id) => loc.get(Number(id))).join(';')}|${labels.join(',')}`;
}

/** Sample values summed by stackKey. */
export function valuesByStack(p: Profile): Map<string, number[]> {
  const out = new Map<string, number[]>();
  p.sample.forEach((s, i) => {
    const k = stackKey(p, i);
    const row = out.get(k) ?? new Array<number>(p.sampleType.length).fill(0);
    s.value.forEach((v, j) => (row[j] = row[j]! + Number(v)));
    out.set(k, row);
  });
  return out;
}

/** Names of a profile's sample types. */
export const sampleTypes = (p: Profile): string[] => p.sampleType.map((t) => p.stringTable.strings[Number(t.type)] ?? '');

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

/** What a decoded profile holds, in the scan's terms (string table size: the UTF-8 bytes of the decoded strings). */
export function profileCounts(p: Profile): ProfileCounts {
  return {
    samples: p.sample.length,
    sampleTypes: p.sampleType.length,
    frames: sum(p.sample.map((s) => s.locationId.length)),
    labels: sum(p.sample.map((s) => s.label.length)),
    locations: p.location.length,
    lines: sum(p.location.map((l) => l.line.length)),
    functions: p.function.length,
    mappings: p.mapping.length,
    strings: p.stringTable.strings.length,
    stringTableSize: sum(p.stringTable.strings.map((s) => Buffer.byteLength(s))),
    comments: p.comment.length,
  };
}
