import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import bcrypt from 'bcryptjs';
import { chromium } from 'playwright-core';
import { Agent, request } from 'undici';
import { SKIP_WITHOUT_OPENSSL } from '../helpers/certs.js';
import { started, startDaemon } from '../helpers/cli.js';
import { freePort } from '../helpers/dockerd.js';
import { exposedValue } from '../helpers/metrics.js';
import { fakeTargetsConfig, httpGet, httpPost, logRecords, services, startFakePprofTarget } from '../helpers/operate.js';
import type { FakePprofTarget } from '../helpers/operate.js';
import { requirePeer } from '../helpers/peers.js';
import { waitUntil } from '../helpers/wait.js';

// `pprof-scraper run` as a real child process, its status listener tried as
// a web page in the operator's browser would (DNS rebinding, cross-site
// posts), and run with basic auth and TLS while it profiles itself.

function config(dir: string, targets: Record<string, FakePprofTarget>, server: string): string {
  return fakeTargetsConfig(dir, targets, `listen: "127.0.0.1:0"${server}`);
}

test('HTTP reload is off by default and SIGHUP still reloads; a foreign Host cannot read /targets', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-listener-'));
  const alpha = await startFakePprofTarget();
  const beta = await startFakePprofTarget();
  const file = join(dir, 'config.yaml');
  await writeFile(file, config(dir, { alpha }, ''));
  const d = startDaemon(['--config', file, '--no-watch-config'], { cwd: dir });
  let done = false;
  try {
    const base = await started(d);
    const port = base.slice(base.lastIndexOf(':') + 1);
    // DNS rebinding: the page's own name, now pointing at 127.0.0.1
    const rebound = await request(`${base}/targets`, { headers: { host: `rebind.example:${port}` } });
    assert.equal(rebound.statusCode, 421);
    assert.match(await rebound.body.text(), /add "rebind\.example" to server\.allowed_hosts/);
    assert.deepEqual(await services(base), ['alpha']);
    assert.deepEqual(await services(base, { host: `localhost:${port}` }), ['alpha'], 'an ssh -L tunnel sends localhost');

    await writeFile(file, config(dir, { alpha, beta }, ''));
    const refused = await httpPost(`${base}/-/reload`);
    assert.equal(refused.status, 403);
    assert.match(refused.text, /server\.enable_reload: true .*SIGHUP/);
    assert.deepEqual(await services(base), ['alpha'], 'the refused POST reloaded nothing');
    assert.equal(exposedValue((await httpGet(`${base}/metrics`)).text, 'pprof_scraper_config_reloads_total', { trigger: 'http' }), undefined);

    d.child.kill('SIGHUP');
    await waitUntil('beta after SIGHUP', async () => (await services(base)).join() === 'alpha,beta', { timeoutMs: 20_000, everyMs: 50 });
    const logged = logRecords(d.output()).filter((r) => r['msg'] === 'status listener refused a request');
    assert.deepEqual(logged.map((r) => [r['status'], r['path']]).sort(), [[403, '/-/reload'], [421, '/targets']]);
    done = true;
  } finally {
    const exit = await d.stop();
    await Promise.all([alpha.close(), beta.close()]);
    await rm(dir, { recursive: true, force: true });
    if (done) assert.equal(exit.code, 0, d.output());
  }
});

test('with enable_reload, a cross-site POST /-/reload is refused and reloads nothing; a plain one reloads', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-listener-'));
  const alpha = await startFakePprofTarget();
  const beta = await startFakePprofTarget();
  const file = join(dir, 'config.yaml');
  await writeFile(file, config(dir, { alpha }, ', enable_reload: true'));
  const d = startDaemon(['--config', file, '--no-watch-config'], { cwd: dir });
  let done = false;
  try {
    const base = await started(d);
    await writeFile(file, config(dir, { alpha, beta }, ', enable_reload: true'));
    for (const headers of [{ 'content-type': 'text/plain' }, { origin: 'https://evil.example' }, { 'sec-fetch-site': 'cross-site' }]) {
      const res = await request(`${base}/-/reload`, { method: 'POST', headers, body: 'x' });
      assert.equal(res.statusCode, 403, JSON.stringify(headers));
      assert.match(await res.body.text(), /^POST \/-\/reload refused: /);
    }
    assert.deepEqual(await services(base), ['alpha']);
    assert.equal(exposedValue((await httpGet(`${base}/metrics`)).text, 'pprof_scraper_config_reloads_total', { trigger: 'http' }), undefined, 'no reload was tried');

    const okay = await httpPost(`${base}/-/reload`);
    assert.equal(okay.status, 200, okay.text);
    assert.deepEqual(await services(base), ['alpha', 'beta']);
    done = true;
  } finally {
    const exit = await d.stop();
    await Promise.all([alpha.close(), beta.close()]);
    await rm(dir, { recursive: true, force: true });
    if (done) assert.equal(exit.code, 0, d.output());
  }
});


test('the daemon profiles itself through its guarded listener: basic auth, then TLS turned on by SIGHUP', { timeout: 90_000, skip: SKIP_WITHOUT_OPENSSL }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-listener-self-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.pem', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { cwd: dir, stdio: 'ignore' });
  await writeFile(join(dir, 'password'), 'self-scrape-pw\n');
  await writeFile(join(dir, 'password.hash'), `${bcrypt.hashSync('self-scrape-pw', 4)}\n`);
  const port = await freePort('127.0.0.1');
  // as the embedded default: the daemon's own /debug/pprof, a short CPU profile and the heap
  const selfConfig = (tls: boolean): string => `scrape:
  interval: 3s
  basic_auth: {username: ops, password_file: password}
${tls ? '  tls: {ca_file: server.pem}\n' : ''}profiles:
  cpu: {path: /debug/pprof/profile, seconds: 1}
  heap: {path: /debug/pprof/heap}
discovery:
  - static:
      service: pprof-scraper
      targets: ["${tls ? 'https://' : ''}127.0.0.1:${port}"]
repositories:
  - directory: {path: profiles}
server:
  listen: 127.0.0.1:${port}
  basic_auth: {username: ops, password_hash_file: password.hash}
${tls ? '  tls: {cert_file: server.pem, key_file: server.key}\n' : ''}state_dir: state
`;
  const file = join(dir, 'config.yaml');
  await writeFile(file, selfConfig(false));
  const d = startDaemon(['--config', file, '--no-watch-config'], { cwd: dir });
  const creds = { authorization: `Basic ${Buffer.from('ops:self-scrape-pw').toString('base64')}` };
  const lastResults = async (base: string, dispatcher?: Agent): Promise<Record<string, string | undefined>> => {
    const res = await request(`${base}/targets`, { headers: creds, ...(dispatcher ? { dispatcher } : {}) });
    const body = JSON.parse(await res.body.text()) as { targets: { last: Record<string, { result: string; time: string }> }[] };
    const last = body.targets[0]?.last ?? {};
    return { cpu: last['cpu']?.result, heap: last['heap']?.result, cpuTime: last['cpu']?.time };
  };
  const trusting = new Agent({ connect: { ca: await readFile(join(dir, 'server.pem')) } });
  let done = false;
  try {
    const base = await started(d);
    assert.equal((await httpGet(`${base}/targets`)).status, 401);
    assert.equal((await httpGet(`${base}/healthz`)).status, 200);
    const first = await waitUntil('a good cpu and heap profile of itself', async () => {
      const r = await lastResults(base);
      return r['cpu'] === 'success' && r['heap'] === 'success' ? r : undefined;
    }, { timeoutMs: 30_000, everyMs: 200 });

    await writeFile(file, selfConfig(true));
    d.child.kill('SIGHUP');
    const reloaded = await d.waitForLog(/^config reloaded$/, 20_000);
    assert.deepEqual(reloaded['server'], ['tls']);
    const https = base.replace(/^http:/, 'https:');
    await waitUntil('a cpu profile over https', async () => {
      const r = await lastResults(https, trusting);
      return r['cpu'] === 'success' && r['cpuTime'] !== first['cpuTime'];
    }, { timeoutMs: 30_000, everyMs: 200 });
    await assert.rejects(httpGet(`${base}/healthz`), 'plain http is gone');
    done = true;
  } finally {
    const exit = await d.stop();
    await trusting.close();
    await rm(dir, { recursive: true, force: true });
    if (done) assert.equal(exit.code, 0, d.output());
  }
});

const CHROMIUM = '/usr/bin/chromium';
const hasChromium = await access(CHROMIUM).then(() => true, () => false);

test('in Chromium: a rebound name gets 421, an allowed name shows the status page, a cross-site page cannot reload or profile', { timeout: 90_000, skip: requirePeer('chromium', hasChromium, `${CHROMIUM} not found`) }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-listener-browser-'));
  const alpha = await startFakePprofTarget();
  const file = join(dir, 'config.yaml');
  await writeFile(file, config(dir, { alpha }, ', enable_reload: true, allowed_hosts: [status.example]'));
  const d = startDaemon(['--config', file, '--no-watch-config'], { cwd: dir });
  // the attacker's site: an image that starts a CPU profile, then a text/plain form posted to /-/reload
  let daemonPort = '';
  const attacker = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><form id="f" method="POST" enctype="text/plain" action="http://127.0.0.1:${daemonPort}/-/reload"><input name="x" value="y"></form>
<img src="http://127.0.0.1:${daemonPort}/debug/pprof/profile?seconds=1" onerror="document.getElementById('f').submit()" onload="document.getElementById('f').submit()">`);
  });
  await new Promise<void>((r) => attacker.listen(0, '127.0.0.1', r));
  const attackerPort = (attacker.address() as AddressInfo).port;
  let browser: Awaited<ReturnType<typeof chromium.launch>> | undefined;
  let done = false;
  try {
    const base = await started(d);
    daemonPort = base.slice(base.lastIndexOf(':') + 1);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // every *.example name resolves to 127.0.0.1, as a rebinding DNS server would make it
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--host-resolver-rules=MAP *.example 127.0.0.1'],
    });
    const page = await browser.newPage();

    const rebound = await page.goto(`http://rebind.example:${daemonPort}/targets`);
    assert.equal(rebound?.status(), 421);
    assert.match(await page.content(), /add "rebind\.example" to server\.allowed_hosts/);

    await page.goto(`http://status.example:${daemonPort}/`);
    await page.locator('section.service[data-service="alpha"]').waitFor({ state: 'visible', timeout: 15_000 });

    const posted = page.waitForResponse((r) => r.url().endsWith('/-/reload'));
    await page.goto(`http://attacker.example:${attackerPort}/`);
    const answer = await posted;
    assert.equal(answer.status(), 403);
    assert.match(await answer.text(), /^POST \/-\/reload refused: /);
    const refusals = await waitUntil('both refusals in the log', () => {
      const r = logRecords(d.output()).filter((l) => l['msg'] === 'status listener refused a request' && l['status'] === 403);
      return r.length >= 2 ? r : undefined;
    }, { timeoutMs: 15_000 });
    assert.deepEqual(refusals.map((r) => r['path']).sort(), ['/-/reload', '/debug/pprof/profile']);
    assert.equal(exposedValue((await httpGet(`${base}/metrics`)).text, 'pprof_scraper_config_reloads_total', { trigger: 'http' }), undefined, 'no reload happened');
    done = true;
  } finally {
    await browser?.close();
    const exit = await d.stop();
    await new Promise<void>((r) => attacker.close(() => r()));
    await alpha.close();
    await rm(dir, { recursive: true, force: true });
    if (done) assert.equal(exit.code, 0, d.output());
  }
});
