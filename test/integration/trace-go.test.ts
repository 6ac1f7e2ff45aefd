/**
 * Go execution traces from a real Go program, through a real daemon: into a
 * directory as `.trace` files that Go's own tool reads, into profefe as type
 * trace, and not into Pyroscope, which says so once.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { request } from 'undici';
import { parseConfig } from '../../src/config/index.js';
import { Daemon } from '../../src/daemon.js';
import { createMetrics } from '../../src/metrics.js';
import { createTargetClient } from '../../src/http/index.js';
import { scrapeProfile } from '../../src/scrape/scraper.js';
import { buildTargets } from '../../src/targets/index.js';
import { tempDir } from '../helpers/delivery.js';
import { goHandlerRunning, goStatus, skipWithoutGo, startGoTarget } from '../helpers/go-target.js';
import { captureLogger } from '../helpers/log.js';
import { startProfefeFake } from '../helpers/profefe-fake.js';
import { startPyroscopeFake } from '../helpers/pyroscope-fake.js';
import { waitUntil } from '../helpers/wait.js';

const skip = await skipWithoutGo();
const run = promisify(execFile);

/** A Go execution trace's 16-byte header, as Go writes it for its version 1.`minor`. */
function traceHeader(minor: number): string {
  return `go 1.${minor} trace`.padEnd(16, '\0');
}

/** The minor version of the Go on PATH (19 for go1.19.8), which built the target. */
async function goMinor(): Promise<number> {
  const m = /\bgo1\.(\d+)/.exec((await goStatus()).why);
  assert.ok(m, `no Go version in ${(await goStatus()).why}`);
  return Number(m[1]);
}

void test('traces from a real Go target land in a directory and in profefe, and not in Pyroscope', { skip, timeout: 120_000 }, async () => {
  const go = await startGoTarget({ host: '127.0.0.11' });
  const profefe = await startProfefeFake();
  const pyroscope = await startPyroscopeFake();
  const { dir, cleanup } = await tempDir('pprof-scraper-trace-');
  const { logger, records: lines } = captureLogger();
  const daemon = new Daemon({ logger, metrics: createMetrics({ defaultMetrics: false }) });
  try {
    const loaded = parseConfig(
      `
scrape: {interval: 2s, timeout: 5s}
profiles:
  trace: {path: /debug/pprof/trace, seconds: 1}
  goroutine: {path: /debug/pprof/goroutine}
discovery:
  - static: {service: go-traced, targets: ["${go.address}"]}
repositories:
  - directory: {path: ${JSON.stringify(join(dir, 'profiles'))}}
  - profefe: {url: "${profefe.url}"}
  - pyroscope: {name: pyro, url: "${pyroscope.url}"}
server: {listen: "127.0.0.1:0"}
state_dir: ${JSON.stringify(join(dir, 'state'))}
`,
      'trace.yaml',
      { baseDir: dir, env: {} },
    );
    await daemon.apply(loaded);

    const folder = join(dir, 'profiles', 'go-traced', 'trace');
    const traces = await waitUntil('two traces in the directory', async () => {
      const names = (await readdir(folder).catch(() => [])).filter((n) => n.endsWith('.trace')).sort();
      return names.length >= 2 ? names : undefined;
    }, { timeoutMs: 30_000 });
    const file = join(folder, traces[0]!);
    const body = await readFile(file);
    const minor = await goMinor();
    assert.equal(body.subarray(0, 16).toString('latin1'), traceHeader(minor), 'starts with the header of the Go that built the target');
    assert.ok(body.length > 1024, `a second of a busy process is more than a header: ${body.length} bytes`);
    const sidecar = JSON.parse(await readFile(file.replace(/\.trace$/, '.json'), 'utf8'));
    assert.equal(sidecar.type, 'trace');
    assert.equal(sidecar.duration_ms, 1000);
    assert.equal((await readdir(folder)).some((n) => n.endsWith('.pb.gz')), false);

    if (minor < 22) {
      // Go's own reader takes the file as it is (before Go 1.22, -d prints its events)
      const { stdout } = await run('go', ['tool', 'trace', '-d', file], { env: { ...process.env, GOTOOLCHAIN: 'local', GOPROXY: 'off' }, maxBuffer: 256 * 1024 * 1024, timeout: 60_000 });
      assert.match(stdout, /\bGoCreate\b/);
      assert.ok(stdout.split('\n').length > 100, 'go tool trace printed the events');
    }

    // profefe got each trace as type trace, byte for byte, dated by created_at
    await waitUntil('two traces at profefe', () => profefe.received.filter((r) => r.type === 'trace').length >= 2, { timeoutMs: 30_000 });
    assert.deepEqual(profefe.rejected, []);
    const sent = profefe.received.filter((r) => r.type === 'trace');
    for (const r of sent) {
      assert.equal(r.service, 'go-traced');
      assert.match(r.createdAt ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
      assert.equal(r.body.subarray(0, 16).toString('latin1'), traceHeader(minor));
    }
    const stored = await Promise.all(traces.map((n) => readFile(join(folder, n))));
    assert.ok(sent.some((r) => stored.some((b) => b.equals(r.body))), 'profefe got the bytes the directory holds');

    // Pyroscope got goroutine profiles and no trace; the daemon said so once, however many traces came
    await waitUntil('goroutine profiles at Pyroscope', () => pyroscope.received.length >= 2, { timeoutMs: 30_000 });
    assert.deepEqual(pyroscope.rejected, []);
    assert.deepEqual([...new Set(pyroscope.received.map((s) => s.label('__name__')))], ['goroutine']);
    const said = lines.filter((l) => /execution trace/i.test(String(l['msg'])));
    assert.equal(said.length, 1, JSON.stringify(said));
    assert.equal(said[0]?.['repository'], 'pyro');
    assert.equal(lines.filter((l) => /quarantine/i.test(String(l['msg']))).length, 0, 'no trace was quarantined');
    assert.equal(lines.filter((l) => l['msg'] === 'scrape failed').length, 0, JSON.stringify(lines.filter((l) => l['msg'] === 'scrape failed')));
  } finally {
    await daemon.stop();
    await profefe.close();
    await pyroscope.close();
    await go.stop();
    await cleanup();
  }
});

void test('a second trace of one Go process gets Go\'s 500 "Could not enable tracing": busy, while a CPU profile runs beside a trace', { skip, timeout: 60_000 }, async () => {
  const go = await startGoTarget({ host: '127.0.0.12' });
  const client = await createTargetClient({});
  try {
    const config = parseConfig(
      `profiles:\n  trace: {path: /debug/pprof/trace, seconds: 1}\n  cpu: {path: /debug/pprof/profile, seconds: 1}\ndiscovery:\n  - static: {targets: [${go.address}]}\nrepositories:\n  - directory: {path: ./unused}\n`,
      'trace.yaml',
      { baseDir: '.', env: {} },
    ).config;
    const [target] = buildTargets(config, [{ source: 0, provider: 'static', targets: [{ address: go.address, labels: {} }] }]).targets;
    assert.ok(target);
    const trace = target.profiles.find((p) => p.type === 'trace')!;
    const cpu = target.profiles.find((p) => p.type === 'cpu')!;
    const options = { timeout: 5000, maxProfileSize: 64 << 20, maxDecompressedSize: 256 << 20 };
    // someone else traces this process for 3 s
    const other = request(`http://${go.address}/debug/pprof/trace?seconds=3`).then((r) => r.body.arrayBuffer());
    await waitUntil('the other trace to run', () => goHandlerRunning(go.address, 'Trace'), { everyMs: 20 });
    const [busy, cpuBeside] = await Promise.all([
      scrapeProfile(target, trace, client, options, AbortSignal.timeout(10_000)),
      scrapeProfile(target, cpu, client, options, AbortSignal.timeout(10_000)),
    ]);
    assert.equal(busy.ok ? '' : busy.result, 'busy');
    assert.match(busy.ok ? '' : busy.reason, /^HTTP 500: "Could not enable tracing: .*already enabled.*": another execution trace of this process is running/);
    assert.ok(cpuBeside.ok, cpuBeside.ok ? '' : `a CPU profile runs while the process is traced: ${cpuBeside.reason}`);
    await other;
    const again = await scrapeProfile(target, trace, client, options, AbortSignal.timeout(10_000));
    assert.ok(again.ok, again.ok ? '' : again.reason);
    assert.equal(again.profile.type, 'trace');
  } finally {
    await client.close();
    await go.stop();
  }
});
