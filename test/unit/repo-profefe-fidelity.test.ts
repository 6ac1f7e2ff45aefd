/**
 * What profefe stores is what the operator meant: every profile dated by
 * `created_at` (profefe falls back to the arrival time otherwise), and custom
 * types told apart by a label so that profefe can merge one of them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import type { ScrapedProfile } from '../../src/profiles/profile.js';
import { createProfefeRepository, PROFEFE_TYPE_LABEL, profefeCreatedAt } from '../../src/repositories/profefe.js';
import { GoQuery, parseCreatedAt, parseWriteParams } from '../helpers/profefe-contract.js';
import { startProfefeFake } from '../helpers/profefe-fake.js';
import type { ProfefeFake } from '../helpers/profefe-fake.js';
import { fixture, fixtureProfile, scrapedProfile } from '../helpers/profiles.js';

/** The fixture with time_nanos set to `timeNanos` (0: no time of its own, as Go execution traces and some exporters send). */
async function withTimeNanos(name: string, timeNanos: bigint): Promise<Buffer> {
  const p = fixtureProfile(name);
  p.timeNanos = timeNanos;
  return gzipSync(p.encode());
}

function scraped(type: string, data: Buffer, time: number): ScrapedProfile {
  return scrapedProfile({ targetId: 't1', type, labels: { instance: '10.0.0.7:6060', provider: 'static' }, time, sampleCount: 3, data });
}

describe('profefe: created_at', () => {
  let fake: ProfefeFake;
  before(async () => {
    fake = await startProfefeFake();
  });
  after(async () => {
    await fake.close();
  });

  test('every profile carries created_at, in UTC, in the layout profefe parses', async () => {
    const repo = await createProfefeRepository('profefe', { url: fake.url, headers: {} } as never);
    // an hour ago, as a profile drained from the queue after an outage
    const time = Date.UTC(2026, 10, 25, 7, 58, 1, 987);
    for (const timeNanos of [0n, BigInt(time) * 1_000_000n]) {
      assert.deepEqual(await repo.send(scraped('heap', await withTimeNanos('heap', timeNanos), time), AbortSignal.timeout(5000)), { status: 'ok' });
      const got = fake.received.at(-1);
      assert.equal(got?.createdAt, '2026-11-25T07:58:01');
      // with no time of its own the profile is filed at created_at, not at the minute it arrived
      assert.equal(Math.floor((got?.indexedAt ?? 0) / 1000), Math.floor(time / 1000), `filed at ${new Date(got?.indexedAt ?? 0).toISOString()} (time_nanos ${timeNanos})`);
    }
    await repo.close();
  });

  test('a time that created_at cannot hold is refused before sending, saying why', async () => {
    const repo = await createProfefeRepository('profefe', { url: fake.url, headers: {} } as never);
    const before = fake.received.length + fake.rejected.length;
    const r = await repo.send(scraped('heap', fixture('heap'), Date.UTC(39381, 0, 1)), AbortSignal.timeout(5000));
    assert.equal(r.status, 'permanent');
    assert.match(r.status === 'permanent' ? r.error : '', /outside the years 0000-9999 .*created_at/);
    assert.equal(fake.received.length + fake.rejected.length, before, 'nothing reached profefe');
    await repo.close();
  });

  test('profefeCreatedAt writes UTC seconds, four-digit years only', () => {
    assert.equal(profefeCreatedAt(Date.UTC(2026, 0, 2, 3, 4, 5, 999)), '2026-01-02T03:04:05');
    assert.equal(profefeCreatedAt(0), '1970-01-01T00:00:00');
    assert.equal(profefeCreatedAt(Date.UTC(10000, 0, 1)), undefined);
    assert.equal(profefeCreatedAt(Number.NaN), undefined);
  });

  const yearZero = new Date(0);
  yearZero.setUTCFullYear(0, 0, 1);
  // profefe's parseTime (pkg/profefe/request.go): time.Parse("2006-01-02T15:04:05", v), and the zero time refused
  const cases: Array<[string, number | undefined]> = [
    ['2026-11-25T08:58:00', Date.UTC(2026, 10, 25, 8, 58, 0)],
    ['2026-11-25T08:58:00.250', Date.UTC(2026, 10, 25, 8, 58, 0, 250)],
    ['2026-11-25T08:58:00,5', Date.UTC(2026, 10, 25, 8, 58, 0, 500)],
    ['0000-01-01T00:00:00', yearZero.getTime()],
    ['2026-11-25T08:58:00Z', undefined],
    ['2026-11-25T08:58:00+01:00', undefined],
    ['2026-11-25 08:58:00', undefined],
    ['2026-11-25T08:58', undefined],
    ['26-11-25T08:58:00', undefined],
    ['39381-01-01T00:00:00', undefined],
    ['2026-02-30T00:00:00', undefined],
    ['2026-11-25T24:00:00', undefined],
    ['2026-11-25T08:58:60', undefined],
    ['0001-01-01T00:00:00', undefined],
    ['1700000000', undefined],
  ];
  for (const [text, want] of cases) {
    test(`the fake reads created_at ${JSON.stringify(text)} as profefe does`, () => {
      assert.equal(parseCreatedAt(text), want);
      const parsed = parseWriteParams(new GoQuery(`service=s&type=heap&created_at=${encodeURIComponent(text)}`));
      assert.equal(parsed.ok, want !== undefined);
      if (!parsed.ok) assert.equal(parsed.error, `bad "created_at" ${JSON.stringify(text)}: time in unsupported format ${JSON.stringify(text)}`);
    });
  }
});

describe('profefe: custom types', () => {
  let fake: ProfefeFake;
  before(async () => {
    fake = await startProfefeFake();
  });
  after(async () => {
    await fake.close();
  });

  test('go as other with a label naming the configured type, so one of them merges', async () => {
    const repo = await createProfefeRepository('profefe', { url: fake.url, headers: {} } as never);
    const now = Date.now();
    // two custom types whose profiles profefe cannot merge together (CPU-like and heap-like samples)
    for (const [type, file] of [['fgprof', 'cpu'], ['memstats', 'heap'], ['fgprof', 'cpu'], ['memstats', 'heap']] as const) {
      assert.deepEqual(await repo.send(scraped(type, fixture(file), now), AbortSignal.timeout(5000)), { status: 'ok' });
    }
    assert.deepEqual(
      fake.received.map((r) => [r.type, r.labels]),
      ['fgprof', 'memstats', 'fgprof', 'memstats'].map((t) => ['other', [['instance', '10.0.0.7:6060'], ['provider', 'static'], [PROFEFE_TYPE_LABEL, t]]]),
    );
    assert.match(JSON.stringify(fake.merge('billing', 'other')), /incompatible/, 'all of other together do not merge (profefe answers an error)');
    assert.deepEqual(fake.merge('billing', 'other', { [PROFEFE_TYPE_LABEL]: 'fgprof' }), { ok: true, profiles: 2 });
    assert.deepEqual(fake.merge('billing', 'other', { [PROFEFE_TYPE_LABEL]: 'memstats' }), { ok: true, profiles: 2 });
    await repo.close();
  });

  test('built-in types carry no type label, and the label cannot be a target label name', async () => {
    const repo = await createProfefeRepository('profefe', { url: fake.url, headers: {} } as never);
    assert.deepEqual(await repo.send(scraped('heap', fixture('heap'), Date.now()), AbortSignal.timeout(5000)), { status: 'ok' });
    assert.ok(!fake.received.at(-1)?.labels.some(([k]) => k === PROFEFE_TYPE_LABEL));
    // target labels are validated against this (src/config/schema.ts)
    assert.doesNotMatch(PROFEFE_TYPE_LABEL, /^[a-zA-Z_][a-zA-Z0-9_]*$/);
    await repo.close();
  });
});
