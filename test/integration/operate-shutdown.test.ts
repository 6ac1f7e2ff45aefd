import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { startDaemon } from '../helpers/cli.js';
import { goHandlerRunning, skipWithoutGo, startGoTarget } from '../helpers/go-target.js';
import type { GoTarget } from '../helpers/go-target.js';
import { startRecordingProxy } from '../helpers/operate.js';
import type { RecordingProxy } from '../helpers/operate.js';
import { waitUntil } from '../helpers/wait.js';

// A real Go target's CPU profile (seconds=3) is in flight when SIGTERM
// arrives: the daemon waits for it, hands it to the repository, exits 0.
// A second signal exits at once.

const skip = await skipWithoutGo();

async function setup(): Promise<{ dir: string; file: string; go: GoTarget; proxy: RecordingProxy; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-shutdown-'));
  const go = await startGoTarget();
  // the proxy shows when the CPU request is in flight
  const proxy = await startRecordingProxy(go.address);
  const file = join(dir, 'config.yaml');
  await writeFile(
    file,
    `scrape: {interval: 4s, timeout: 5s}
profiles:
  cpu: {path: /debug/pprof/profile, seconds: 3}
discovery:
  - static: {service: go-app, targets: ["${proxy.address}"]}
repositories:
  - directory: {path: "${join(dir, 'profiles')}"}
server: {listen: "127.0.0.1:0"}
state_dir: "${join(dir, 'state')}"
`,
  );
  return {
    dir,
    file,
    go,
    proxy,
    cleanup: async () => {
      await proxy.close();
      await go.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function cpuFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(join(dir, 'profiles', 'go-app', 'cpu'))).filter((f) => f.endsWith('.pb.gz'));
  } catch {
    return [];
  }
}

test('SIGTERM with a CPU profile in flight: the profile still lands, exit 0', { skip, timeout: 60_000 }, async () => {
  const { dir, file, go, proxy, cleanup } = await setup();
  const d = startDaemon(['--config', file], { cwd: dir });
  try {
    await d.waitForLog(/^pprof-scraper running$/, 60_000);
    const inFlight = await waitUntil('a CPU request in flight', () => proxy.requests.find((r) => r.endedAt === undefined), { timeoutMs: 15_000 });
    // the signal comes while the Go target profiles, well short of its 3 s
    await waitUntil('the CPU profile to run in the Go target', () => goHandlerRunning(go.address, 'Profile'), { everyMs: 20 });
    assert.deepEqual(await cpuFiles(dir), [], 'nothing landed before the signal');
    const signalledAt = Date.now();
    const exit = await d.stop('SIGTERM');
    assert.equal(exit.code, 0, d.output());
    assert.ok(inFlight.endedAt !== undefined && inFlight.endedAt >= signalledAt, 'the scrape finished after the signal');
    assert.equal(inFlight.status, 200);
    const files = await cpuFiles(dir);
    assert.equal(files.length, 1, `one CPU profile landed: ${files.join(', ')}; output:\n${d.output()}`);
    const profile = Profile.decode(gunzipSync(await readFile(join(dir, 'profiles', 'go-app', 'cpu', files[0]!))));
    assert.ok(profile.sample.length > 0, 'the profile has samples');
    assert.ok(Number(profile.durationNanos) >= 2.5e9, `a 3 s profile, got ${Number(profile.durationNanos) / 1e9} s`);
    assert.match(d.output(), /"msg":"stopped"/);
    assert.equal(proxy.requests.filter((r) => r.startedAt > signalledAt).length, 0, 'no scrape started after the signal');
  } finally {
    await d.stop('SIGKILL');
    await cleanup();
  }
});

test('a second signal exits at once, without waiting for the scrape in flight', { skip, timeout: 60_000 }, async () => {
  const { dir, file, proxy, cleanup } = await setup();
  const d = startDaemon(['--config', file], { cwd: dir });
  try {
    await d.waitForLog(/^pprof-scraper running$/, 60_000);
    const inFlight = await waitUntil('a CPU request in flight', () => proxy.requests.find((r) => r.endedAt === undefined), { timeoutMs: 15_000 });
    d.child.kill('SIGTERM');
    await d.waitForLog(/^stopping/);
    const exit = await d.stop('SIGINT');
    const exitedAt = Date.now();
    assert.equal(exit.code, 1);
    assert.ok(exitedAt < inFlight.startedAt + 3_000, `exited ${exitedAt - inFlight.startedAt} ms into the 3 s profile: it did not wait for it`);
    assert.match(d.output(), /second signal: exiting now/);
  } finally {
    await d.stop('SIGKILL');
    await cleanup();
  }
});
