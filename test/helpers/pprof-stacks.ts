/**
 * Reading pprof samples the way a person compares them: by the function
 * names and lines of their stacks and by their labels, independent of the
 * ids and order a profile happens to use.
 */
import {gunzipSync} from 'node:zlib';
import {Profile} from 'pprof-format';

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
