/**
 * Profiles for tests: the fixtures in test/fixtures (real Go profiles), and
 * ScrapedProfile values as the scraper hands them to repositories, where a
 * test states only what it is about.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Profile, StringTable, ValueType } from 'pprof-format';
import type { ScrapedProfile } from '../../src/profiles/profile.js';

/** A file of test/fixtures as bytes; a bare name is a gzipped profile (`heap` is heap.pb.gz). */
export function fixture(name: string): Buffer {
  return readFileSync(fixtureUrl(name));
}

function fixtureUrl(name: string): URL {
  return new URL(`../fixtures/${name.includes('.') ? name : `${name}.pb.gz`}`, import.meta.url);
}

/** A fixture decoded: a Profile of its own to change. */
export function fixtureProfile(name: string): Profile {
  return Profile.decode(gunzipSync(fixture(name)));
}

/** A fixture as a target serves it at `timeMs`: TimeNanos set, gzipped. */
export function stampedFixture(name: string, timeMs: number): Buffer {
  const p = fixtureProfile(name);
  p.timeNanos = BigInt(timeMs) * 1_000_000n;
  return gzipSync(p.encode());
}

/** A valid pprof profile with one sample type and no samples, encoded but not gzipped. */
export function emptyPprof(): Buffer {
  const strings = new StringTable();
  const sampleType = new ValueType({ type: strings.dedup('inuse_space'), unit: strings.dedup('bytes') });
  return Buffer.from(new Profile({ sampleType: [sampleType], stringTable: strings }).encode());
}

const fixtureOfType = new Map<string, Buffer>();

/**
 * A profile as a scrape of target abc123 (service billing, 10.0.0.7:6060)
 * gives it: a heap profile unless `over` says another type, its bytes the
 * fixture of that type (heap for a type without one). `over` wins.
 */
export function scrapedProfile(over: Partial<ScrapedProfile> = {}): ScrapedProfile {
  const type = over.type ?? 'heap';
  return {
    targetId: 'abc123',
    service: 'billing',
    type,
    labels: { instance: '10.0.0.7:6060' },
    time: Date.UTC(2026, 10, 25, 8, 58, 0, 123),
    sampleCount: 1,
    url: `http://10.0.0.7:6060/debug/pprof/${type}`,
    data: over.data ?? typeFixture(type),
    ...over,
  };
}

function typeFixture(type: string): Buffer {
  let data = fixtureOfType.get(type);
  if (!data) {
    data = existsSync(fixtureUrl(type)) ? fixture(type) : fixture('heap');
    fixtureOfType.set(type, data);
  }
  return data;
}

/** A heap profile tagged with `seq` (label and time); its bytes are arbitrary, for code that never reads them (the queue). */
export function taggedProfile(seq: number, size = 200, extra: Partial<ScrapedProfile> = {}): ScrapedProfile {
  return scrapedProfile({
    targetId: `t${seq % 7}`,
    service: 'svc',
    labels: { instance: '127.0.0.1:6060', seq: String(seq) },
    time: 1_700_000_000_000 + seq,
    url: 'http://127.0.0.1:6060/debug/pprof/heap',
    data: Buffer.concat([Buffer.from(`profile-${seq}:`), randomBytes(Math.max(0, size - 16))]),
    ...extra,
  });
}

/** The `seq` a taggedProfile carries. */
export const seqOf = (p: ScrapedProfile): number => Number(p.labels['seq']);
