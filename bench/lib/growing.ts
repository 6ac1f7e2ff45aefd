/**
 * Fixture profiles that move on, for a repository that sends deltas: a fixed
 * fixture would show the daemon the same counters and the same TimeNanos at
 * every scrape, which it reads as a restart (nothing sent), and its old
 * TimeNanos lies outside Pyroscope's ingestion window. Here each profile's
 * values are the fixture's × (1 + whole seconds since start), so cumulative
 * counters rise between two scrapes of a target as in a live Go process, and
 * TimeNanos is now. Every target gets the same bytes within a second: one
 * encoding per type per second, whatever the fleet size.
 */
import {gunzipSync, gzipSync} from 'node:zlib';
import {Profile} from 'pprof-format';

export interface Growing {
  body(now?: number): Buffer;
}

export function growing(fixture: Buffer, startedAt: number): Growing {
  const raw = gunzipSync(fixture);
  let second = -1;
  let cached = fixture;
  return {
    body(now = Date.now()) {
      const s = Math.floor((now - startedAt) / 1000);
      if (s === second) return cached;
      const p = Profile.decode(raw);
      const k = s + 1;
      for (const sample of p.sample) sample.value = sample.value.map((v) => (typeof v === 'bigint' ? v * BigInt(k) : v * k));
      p.timeNanos = BigInt(now) * 1_000_000n;
      second = s;
      cached = gzipSync(p.encode(), {level: 1});
      return cached;
    },
  };
}
