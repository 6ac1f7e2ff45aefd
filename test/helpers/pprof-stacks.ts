/**
 * Reading pprof samples the way a person compares them: by the function
 * names and lines of their stacks and by their labels, independent of the
 * ids and order a profile happens to use; and counting what a profile holds
 * as the scan counts it.
 */
import {readdir, readFile} from 'node:fs/promises';
import {join} from 'node:path';
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

/** The profiles a directory repository at `dir` holds for a service and type, by their TimeNanos. */
export async function rawScrapes(dir: string, service: string, type: string): Promise<Map<bigint, {bytes: Buffer; profile: Profile}>> {
  const folder = join(dir, service, type);
  const out = new Map<bigint, {bytes: Buffer; profile: Profile}>();
  for (const f of (await readdir(folder)).filter((n) => n.endsWith('.pb.gz'))) {
    const bytes = await readFile(join(folder, f));
    const profile = decodePprof(bytes);
    out.set(BigInt(profile.timeNanos), {bytes, profile});
  }
  return out;
}

/**
 * What the delta of two scrapes of a Go allocs (or heap) profile holds, by
 * stack (valuesByStack rows): alloc_objects and alloc_space, cumulative, as
 * the difference; inuse_objects and inuse_space as the newer scrape has them.
 * A stack whose four values come to 0 is left out.
 */
export function expectedAllocsDelta(before: Map<string, number[]>, after: Map<string, number[]>): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const [stack, row] of after) {
    const old = before.get(stack) ?? row.map(() => 0);
    const want = [row[0]! - old[0]!, row[1]! - old[1]!, row[2]!, row[3]!];
    if (want.some((v) => v !== 0)) out.set(stack, want);
  }
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
