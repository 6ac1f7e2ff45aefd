import assert from 'node:assert/strict';
import {test} from 'node:test';
import {gunzipSync} from 'node:zlib';
import {Profile} from 'pprof-format';
import {request} from 'undici';
import {skipWithoutGo, startGoTarget} from '../helpers/go-target.js';
import {waitUntil} from '../helpers/wait.js';

const skip = await skipWithoutGo();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

void test('the Go target serves every profile type with samples, and stops on SIGTERM', {skip, timeout: 120_000}, async () => {
  const target = await startGoTarget({host: '127.0.0.3', work: 1});
  try {
    assert.match(target.address, /^127\.0\.0\.3:\d+$/);
    // The background work shows up in every profile a moment after the start (the CPU profile takes its own second).
    const samples = async (type: string): Promise<number> => {
      const res = await request(`http://${target.address}/debug/pprof/${type}`);
      return Profile.decode(gunzipSync(Buffer.from(await res.body.arrayBuffer()))).sample.length;
    };
    await waitUntil('samples in every profile', async () => (await Promise.all(['heap', 'allocs', 'goroutine', 'block', 'mutex', 'threadcreate'].map(samples))).every((n) => n > 0), {timeoutMs: 15_000, everyMs: 100});
    for (const type of ['heap', 'allocs', 'goroutine', 'block', 'mutex', 'threadcreate', 'profile?seconds=1']) {
      const res = await request(`http://${target.address}/debug/pprof/${type}`);
      assert.equal(res.statusCode, 200, type);
      const profile = Profile.decode(gunzipSync(Buffer.from(await res.body.arrayBuffer())));
      assert.ok(profile.sample.length > 0, `${type} has samples`);
    }
  } finally {
    await target.stop();
  }
  await target.stop();
  assert.equal(alive(target.pid), false);
});
