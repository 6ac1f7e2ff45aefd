import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { DEFAULT_PROFILE_LIMITS } from '../../src/config/index.js';
import type { ProfileLimits, PyroscopeConfig } from '../../src/config/index.js';
import { decodeProfile } from '../../src/profiles/decode.js';
import { DeltaStore } from '../../src/profiles/delta.js';
import type { ScrapedProfile } from '../../src/profiles/profile.js';
import { ProfileError, ProfileFormatError, ProfileLimitError } from '../../src/profiles/errors.js';
import { createPyroscopeRepository } from '../../src/repositories/pyroscope.js';
import { sampleTypeNames } from '../../src/repositories/pyroscope-push.js';
import { fixture, scrapedProfile } from '../helpers/profiles.js';
import { sampleBomb } from '../helpers/sample-bomb.js';
import { pyroscopeConfig } from '../helpers/pyroscope-fake.js';

const MiB = 1024 ** 2;

function limitError(limit: keyof ProfileLimits): (err: unknown) => true {
  return (err) => {
    assert.ok(err instanceof ProfileLimitError, String(err));
    assert.ok(err instanceof ProfileError);
    assert.equal(err.limit, limit);
    return true;
  };
}

function scraped(data: Buffer, type = 'allocs'): ScrapedProfile {
  return scrapedProfile({ targetId: 't1', service: 'api', type, labels: { instance: '127.0.0.1:6060' }, time: 1_764_000_000_000, sampleCount: 3_000_000, url: 'http://127.0.0.1:6060/debug/pprof/allocs', data });
}

const config: PyroscopeConfig = pyroscopeConfig('http://127.0.0.1:9');

describe('the bounded decoder', () => {
  for (const name of ['heap', 'cpu', 'allocs-10k']) {
    test(`decodes a real ${name} profile, gzipped or raw, as pprof-format does`, () => {
      const gz = fixture(name);
      const expected = Profile.decode(gunzipSync(gz));
      for (const input of [gz, gunzipSync(gz)]) {
        const { profile, summary } = decodeProfile(input, DEFAULT_PROFILE_LIMITS);
        assert.deepEqual(profile, expected);
        assert.equal(summary.sampleCount, expected.sample.length);
      }
    });
  }

  test('refuses a sample bomb before building any object', () => {
    assert.throws(() => decodeProfile(sampleBomb(), DEFAULT_PROFILE_LIMITS), limitError('max_samples'));
  });

  test('refuses a gzip bomb at max_decompressed_size, gzipped or raw', () => {
    const limits = { ...DEFAULT_PROFILE_LIMITS, max_decompressed_size: MiB };
    assert.throws(() => decodeProfile(gzipSync(Buffer.alloc(64 * MiB)), limits), (err: unknown) => {
      limitError('max_decompressed_size')(err);
      assert.equal((err as Error).message, 'gzip profile decompresses to more than scrape.max_decompressed_size (1MiB): refused (a gzip bomb, or raise the limit)');
      return true;
    });
    assert.throws(() => decodeProfile(Buffer.alloc(2 * MiB, 0x08), limits), limitError('max_decompressed_size'));
  });

  test('damaged input is a ProfileFormatError', () => {
    const gz = fixture('heap');
    assert.throws(() => decodeProfile(gz.subarray(0, gz.length - 20), DEFAULT_PROFILE_LIMITS), /^ProfileFormatError: truncated gzip/);
    assert.throws(() => decodeProfile(Buffer.from('<html>'), DEFAULT_PROFILE_LIMITS), ProfileFormatError);
  });
});

describe('decoders that use it', () => {
  test('a delta refuses a sample bomb and keeps the baseline it had', () => {
    const store = new DeltaStore();
    assert.equal(store.compute('s', fixture('allocs'), 1).kind, 'baseline');
    assert.throws(() => store.compute('s', sampleBomb(), 2), limitError('max_samples'));
    assert.equal(store.size, 1);
  });

  test('Pyroscope prepare throws on a profile past the limits of the config in force, rather than sending it as scraped', async () => {
    let limits: ProfileLimits = { ...DEFAULT_PROFILE_LIMITS, max_samples: 1000 };
    const repo = await createPyroscopeRepository('p', config, { profileLimits: () => limits });
    try {
      const bomb = scraped(sampleBomb(5000));
      await assert.rejects(repo.prepare(bomb), limitError('max_samples'));
      // a reload that raises the limit lets it through (no cumulative types: it goes as it is)
      limits = DEFAULT_PROFILE_LIMITS;
      assert.equal((await repo.prepare(bomb)).status, 'send');
    } finally {
      await repo.close();
    }
  });

  test('Pyroscope prepare throws on the 3,000,000-sample bomb under the default limits', async () => {
    const repo = await createPyroscopeRepository('p', config);
    try {
      await assert.rejects(repo.prepare(scraped(sampleBomb(), 'goroutine')), limitError('max_samples'));
    } finally {
      await repo.close();
    }
  });

  test('Pyroscope reads sample type names within the limits too', () => {
    assert.deepEqual(sampleTypeNames(fixture('block')), ['contentions', 'delay']);
    assert.throws(() => sampleTypeNames(gzipSync(Buffer.alloc(64 * MiB)), { ...DEFAULT_PROFILE_LIMITS, max_decompressed_size: MiB }), limitError('max_decompressed_size'));
    assert.throws(() => sampleTypeNames(sampleBomb()), limitError('max_samples'));
  });
});
