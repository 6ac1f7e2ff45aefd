import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { started, startDaemon } from '../helpers/cli.js';
import type { DaemonProcess } from '../helpers/cli.js';
import { exposedValue } from '../helpers/metrics.js';
import { fakeTargetsConfig, httpGet, httpPost, logRecords, services, startFakePprofTarget } from '../helpers/operate.js';
import type { FakePprofTarget } from '../helpers/operate.js';
import { waitUntil } from '../helpers/wait.js';

// `pprof-scraper run` as a real child process, reloaded by each trigger:
// SIGHUP, an edit of the file (in place, renamed over, backup-then-write),
// and POST /-/reload; invalid edits keep the old targets.

function config(dir: string, targets: Record<string, FakePprofTarget>, listen = '127.0.0.1:0'): string {
  return fakeTargetsConfig(dir, targets, `listen: "${listen}", enable_reload: true`);
}

// two errors, on lines 1 and 9, so the answer must list both with line:column
const INVALID = `scrape: {interval: soon}
profiles:
  heap: {path: /debug/pprof/heap}
discovery:
  - static:
      targets:
        - {address: "127.0.0.1:6060", service: bad}
repositories:
  - directory: {path: ./profiles, retention: {max_age: forever}}
server: {listen: "127.0.0.1:0"}
`;

function reloads(d: DaemonProcess, msg: RegExp): Record<string, unknown>[] {
  return logRecords(d.output()).filter((r) => typeof r['msg'] === 'string' && msg.test(r['msg']));
}

async function servicesBecome(base: string, want: string[]): Promise<void> {
  await waitUntil(`targets ${want.join(', ')}`, async () => (await services(base)).join(',') === want.join(','), { timeoutMs: 20_000, everyMs: 50 });
}

test('reload by SIGHUP and by POST /-/reload; an invalid file is refused with every error and the old targets stay', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-reload-'));
  const alpha = await startFakePprofTarget();
  const beta = await startFakePprofTarget();
  const file = join(dir, 'config.yaml');
  await writeFile(file, config(dir, { alpha }));
  const d = startDaemon(['--config', file, '--no-watch-config'], { cwd: dir });
  let done = false;
  try {
    const base = await started(d);
    assert.deepEqual(await services(base), ['alpha']);

    // SIGHUP: watching is off, so only the signal can make this edit count
    await writeFile(file, config(dir, { alpha, beta }));
    // a sleep on purpose: no reload may happen within it
    await new Promise((r) => setTimeout(r, 400));
    assert.deepEqual(await services(base), ['alpha'], 'nothing reloads before the signal');
    d.child.kill('SIGHUP');
    await servicesBecome(base, ['alpha', 'beta']);
    const bySignal = reloads(d, /^config reloaded$/);
    assert.equal(bySignal.length, 1);
    assert.equal(bySignal[0]?.['trigger'], 'signal');
    assert.deepEqual(bySignal[0]?.['targets'], { added: 1, removed: 0, kept: 1 });

    // POST /-/reload with an invalid file: 400, every error with line:column, old targets stay
    await writeFile(file, INVALID);
    const refused = await httpPost(`${base}/-/reload`);
    assert.equal(refused.status, 400);
    assert.match(refused.text, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:1:\\d+: scrape.interval: .*soon`));
    assert.match(refused.text, /:9:\d+: repositories\[0\]\.directory\.retention\.max_age: .*forever/);
    assert.deepEqual(await services(base), ['alpha', 'beta']);
    const metrics = (await httpGet(`${base}/metrics`)).text;
    assert.equal(exposedValue(metrics, 'pprof_scraper_config_last_reload_successful'), 0);
    assert.equal(exposedValue(metrics, 'pprof_scraper_config_reloads_total', { trigger: 'http', result: 'invalid' }), 1);
    // the log has each error with its line and column
    const logged = logRecords(d.output()).filter((r) => r['trigger'] === 'http' && typeof r['line'] === 'number');
    assert.deepEqual(logged.map((r) => r['line']).sort(), [1, 9]);
    assert.ok(logged.every((r) => typeof r['column'] === 'number' && r['file'] === file));

    // JSON errors on request
    const asJson = await httpPost(`${base}/-/reload`, { accept: 'application/json' });
    assert.equal(asJson.status, 400);
    const errors = (JSON.parse(asJson.text) as { errors: { line: number; column: number; path: string }[] }).errors;
    assert.deepEqual(errors.map((e) => e.line), [1, 9]);

    // a valid file again: 200, beta gone, the metrics say so
    const text = config(dir, { alpha });
    await writeFile(file, text);
    const okay = await httpPost(`${base}/-/reload`);
    assert.equal(okay.status, 200, okay.text);
    assert.deepEqual(await services(base), ['alpha']);
    const after = (await httpGet(`${base}/metrics`)).text;
    assert.equal(exposedValue(after, 'pprof_scraper_config_last_reload_successful'), 1);
    assert.equal(exposedValue(after, 'pprof_scraper_config_hash'), Number.parseInt(createHash('sha256').update(text).digest('hex').slice(0, 12), 16));
    const stamp = exposedValue(after, 'pprof_scraper_config_last_reload_success_timestamp_seconds') ?? 0;
    assert.ok(Math.abs(stamp - Date.now() / 1000) < 30, `success timestamp ${stamp}`);
    assert.equal((await httpGet(`${base}/-/reload`)).status, 405, 'GET /-/reload is not a reload');

    // a new server.listen moves the listener; the request that asked still gets its answer
    await writeFile(file, config(dir, { alpha }, '127.0.0.2:0'));
    const moved = await httpPost(`${base}/-/reload`);
    assert.equal(moved.status, 200, moved.text);
    const to = await d.waitForLog(/^status listener moved$/);
    assert.match(String(to['listen']), /^127\.0\.0\.2:\d+$/);
    assert.deepEqual(await services(`http://${String(to['listen'])}`), ['alpha']);
    await assert.rejects(httpGet(`${base}/healthz`), /ECONNREFUSED/);
    const logged2 = reloads(d, /^config reloaded$/).at(-1);
    assert.deepEqual(logged2?.['listen'], { from: '127.0.0.1:0', to: '127.0.0.2:0' });
    done = true;
  } finally {
    const exit = await d.stop();
    await Promise.all([alpha.close(), beta.close()]);
    await rm(dir, { recursive: true, force: true });
    // only when the test got this far: a failure above says more than the exit
    if (done) assert.equal(exit.code, 0, d.output());
  }
});

test('reload on a file change: in place, renamed over, backup-then-write; an invalid edit keeps the old targets', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-watch-'));
  const alpha = await startFakePprofTarget();
  const beta = await startFakePprofTarget();
  const gamma = await startFakePprofTarget();
  const file = join(dir, 'config.yaml');
  await writeFile(file, config(dir, { alpha }));
  const d = startDaemon(['--config', file], { cwd: dir });
  let done = false;
  try {
    const base = await started(d);
    assert.deepEqual(await services(base), ['alpha']);

    // in place, as `echo > file` does
    await writeFile(file, config(dir, { alpha, beta }));
    await servicesBecome(base, ['alpha', 'beta']);

    // renamed over the old file, as most editors and config managers save
    await writeFile(`${file}.tmp`, config(dir, { beta }));
    await rename(`${file}.tmp`, file);
    await servicesBecome(base, ['beta']);

    // an invalid edit, renamed over: refused, targets stay
    const refusedBefore = reloads(d, /^reload refused/).length;
    await writeFile(`${file}.tmp`, INVALID);
    await rename(`${file}.tmp`, file);
    await waitUntil('the refusal in the log', () => reloads(d, /^reload refused/).length > refusedBefore, { timeoutMs: 20_000, everyMs: 50 });
    assert.deepEqual(await services(base), ['beta']);
    assert.equal(exposedValue((await httpGet(`${base}/metrics`)).text, 'pprof_scraper_config_last_reload_successful'), 0);

    // backup-then-write (vim's default): the old file moves away, a new one appears
    await rename(file, `${file}~`);
    await writeFile(file, config(dir, { beta, gamma }));
    await servicesBecome(base, ['beta', 'gamma']);
    assert.equal(exposedValue((await httpGet(`${base}/metrics`)).text, 'pprof_scraper_config_last_reload_successful'), 1);

    const byFile = reloads(d, /^config reloaded/).filter((r) => r['trigger'] === 'file');
    assert.ok(byFile.length >= 3, `three reloads by file change, saw ${byFile.length}`);
    // the debounce makes one save one reload: no reload applied the same text twice
    const hashes = byFile.map((r) => r['hash']);
    for (let i = 1; i < hashes.length; i++) assert.notEqual(hashes[i], hashes[i - 1]);
    done = true;
  } finally {
    const exit = await d.stop();
    await Promise.all([alpha.close(), beta.close(), gamma.close()]);
    await rm(dir, { recursive: true, force: true });
    // only when the test got this far: a failure above says more than the exit
    if (done) assert.equal(exit.code, 0, d.output());
  }
});
