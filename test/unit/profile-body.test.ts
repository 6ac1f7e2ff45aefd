import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { DEFAULT_PROFILE_LIMITS } from '../../src/config/index.js';
import { scanProfile } from '../../src/profiles/scan.js';
import { BodyError, checkProfileBody } from '../../src/scrape/body.js';
import { emptyPprof, fixture } from '../helpers/profiles.js';

const MiB = 1024 ** 2;

const limits = (maxDecompressed = 64 * MiB) => ({ ...DEFAULT_PROFILE_LIMITS, max_decompressed_size: maxDecompressed });

async function rejects(body: Buffer, pattern: RegExp, contentType?: string, max = 64 * MiB): Promise<void> {
  await assert.rejects(checkProfileBody(body, limits(max), contentType), (err: unknown) => {
    assert.ok(err instanceof BodyError, String(err));
    assert.match(err.message, pattern);
    return true;
  });
}

describe('pprof body check', () => {
  for (const name of ['heap', 'allocs', 'goroutine', 'block', 'mutex', 'threadcreate', 'cpu']) {
    test(`a real Go ${name} profile passes, with the counts pprof-format sees`, async () => {
      const body = fixture(name);
      const checked = await checkProfileBody(body, limits(), 'application/octet-stream');
      const decoded = Profile.decode(gunzipSync(body));
      assert.equal(checked.data, body, 'gzip bodies are kept as received');
      assert.equal(checked.summary.sampleCount, decoded.sample.length);
      assert.equal(checked.summary.sampleTypeCount, decoded.sampleType.length);
      assert.equal(checked.summary.timeMs, Number(BigInt(decoded.timeNanos) / 1_000_000n));
    });
  }

  test('a raw (not gzipped) protobuf passes and is gzipped once', async () => {
    const raw = gunzipSync(fixture('heap'));
    const checked = await checkProfileBody(raw, limits(), undefined);
    assert.deepEqual(gunzipSync(checked.data), raw);
  });

  test('HTML is refused, saying what came back', async () => {
    await rejects(Buffer.from('<!DOCTYPE html><html><body>Login</body></html>'), /^body is not a pprof profile \(not a pprof profile: field 7 has wire type 4 at byte 0\); it starts with "<!DOCTYPE html><html><body>Login<\/body><\/html>" \(Content-Type text\/html\)$/, 'text/html');
  });

  test('JSON is refused', async () => {
    await rejects(Buffer.from('{"error":"not found"}'), /not a pprof profile.*starts with "\{\\"error\\":\\"not found\\"\}"/);
  });

  test('Go text output (debug=1) is refused', async () => {
    await rejects(Buffer.from('goroutine profile: total 4\n1 @ 0x43\n'), /not a pprof profile/);
  });

  test('a truncated gzip is refused', async () => {
    const body = fixture('goroutine');
    await rejects(body.subarray(0, Math.floor(body.length / 2)), /^truncated gzip body \(\d+ bytes\): the target closed it early$/);
  });

  test('a truncated raw protobuf is refused', async () => {
    const raw = gunzipSync(fixture('goroutine'));
    await rejects(raw.subarray(0, raw.length - 7), /^body is not a pprof profile \(truncated: /);
  });

  test('a gzip bomb stops at max_decompressed_size', async () => {
    const bomb = gzipSync(Buffer.alloc(64 * MiB));
    assert.ok(bomb.length < 100_000);
    await rejects(bomb, /decompresses to more than max_decompressed_size \(16MiB\): refused/, undefined, 16 * MiB);
  });

  test('an empty profile passes the check with 0 samples (repositories decide)', async () => {
    const encoded = emptyPprof();
    const s = scanProfile(encoded, DEFAULT_PROFILE_LIMITS);
    assert.equal(s.sampleCount, 0);
  });

  test('empty bodies are refused', () => {
    assert.throws(() => scanProfile(Buffer.alloc(0), DEFAULT_PROFILE_LIMITS), /the body is empty/);
  });
});
