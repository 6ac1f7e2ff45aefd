import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import bcrypt from 'bcryptjs';
import { ConfigLoadError, parseConfig } from '../../src/config/index.js';
import { silentLogger } from '../../src/log.js';
import { statusRoutes } from '../../src/server/routes.js';
import type { StatusSource } from '../../src/server/routes.js';
import { startStatusServer } from '../../src/server/server.js';
import type { StatusServer } from '../../src/server/server.js';
import { listenerOptionsOf } from '../../src/server/settings.js';
import type { ListenerOptions } from '../../src/server/settings.js';
import { SKIP_WITHOUT_OPENSSL } from '../helpers/certs.js';
import { captureLogger } from '../helpers/log.js';
import { staticStatusSource } from '../helpers/status-source.js';

// The status listener against what a web page in the operator's browser can
// send (DNS rebinding, cross-site posts) and against anyone who can reach it
// (credentials, TLS, the daemon's own CPU profiler).

interface Answer {
  status: number;
  text: string;
  headers: Record<string, string | string[] | undefined>;
}

interface Ask {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /** Give up when no answer starts within this time. */
  timeoutMs?: number;
}

/** One request with full control of its headers (Host included), over http or https. */
function ask(url: string, options: Ask = {}): Promise<Answer> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(
      { host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port, path: `${u.pathname}${u.search}`, method: options.method ?? 'GET', headers: options.headers ?? {}, agent: false, ...(options.tls ?? {}) },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text, headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.setTimeout(options.timeoutMs ?? 15_000, () => req.destroy(new Error(`no answer to ${url} within ${options.timeoutMs ?? 15_000} ms`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

function source(): StatusSource {
  return staticStatusSource();
}

/** A listener on a free port with the status routes and a POST /-/reload that counts its calls. */
async function listener(options: ListenerOptions = {}, logger = silentLogger()): Promise<{ server: StatusServer; base: string; port: string; reloads: () => number }> {
  const routes = statusRoutes(source());
  let reloads = 0;
  routes.set('POST /-/reload', (_req, res) => {
    reloads++;
    res.end('reloaded\n');
  });
  const server = await startStatusServer('127.0.0.1:0', routes, logger, options);
  const port = server.address.slice(server.address.lastIndexOf(':') + 1);
  return { server, base: `${options.tls ? 'https' : 'http'}://${server.address}`, port, reloads: () => reloads };
}

/** server: settings through the real loader, as a config file gives them. */
async function optionsFrom(serverYaml: string, dir = process.cwd()): Promise<ListenerOptions> {
  const loaded = parseConfig(`repositories:\n  - directory: {path: ./profiles}\nserver:\n${serverYaml}`, join(dir, 'config.yaml'), { baseDir: dir, env: {} });
  return listenerOptionsOf(loaded.config.server);
}

function configErrors(serverYaml: string): string {
  try {
    parseConfig(`repositories:\n  - directory: {path: ./profiles}\nserver:\n${serverYaml}`, 'config.yaml', { baseDir: process.cwd(), env: {} });
  } catch (err) {
    if (err instanceof ConfigLoadError) return err.message;
    throw err;
  }
  return '';
}

test('the Host check: a foreign name is refused with what to add; IP literals, localhost and allowed_hosts are answered', async () => {
  const logs = captureLogger();
  const { server, base, port } = await listener(await optionsFrom('  allowed_hosts: [Status.Example.COM]\n'), logs.logger);
  try {
    // a page on rebind.example whose name now points at 127.0.0.1
    for (const path of ['/targets', '/metrics', '/', '/healthz', '/debug/pprof/heap']) {
      const refused = await ask(`${base}${path}`, { headers: { host: `rebind.example:${port}` } });
      assert.equal(refused.status, 421, path);
      assert.match(refused.text, /"rebind\.example".*add "rebind\.example" to server\.allowed_hosts/);
      assert.doesNotMatch(refused.text, /"targets"/);
    }
    assert.equal((await ask(`${base}/-/reload`, { method: 'POST', headers: { host: 'rebind.example' } })).status, 421);
    assert.equal((await ask(`${base}/targets`, { headers: { host: 'status.example.com.evil.example' } })).status, 421, 'a suffix of an allowed name is another name');
    assert.equal((await ask(`${base}/targets`, { headers: { host: 'not a host' } })).status, 421);
    assert.equal(logs.find(/^status listener refused a request$/).filter((r) => r['host'] === `rebind.example:${port}` && r['path'] === '/targets').length, 1, 'logged once, not per request');

    for (const host of [`127.0.0.1:${port}`, '127.0.0.1', `localhost:${port}`, 'LOCALHOST', `app.localhost:${port}`, `[::1]:${port}`, '[::1]', `10.1.2.3:${port}`, `status.example.com:${port}`, 'STATUS.example.com:1', 'status.example.com.']) {
      const answered = await ask(`${base}/targets`, { headers: { host } });
      assert.equal(answered.status, 200, `Host: ${host}: ${answered.text}`);
    }
    // the status page's own links are relative, so they reach the same Host
    const page = await ask(`${base}/`, { headers: { host: `localhost:${port}` } });
    assert.equal(page.status, 200);
    assert.match(page.text, /fetch\('targets'/);
  } finally {
    await server.close();
  }
});

test('a request without Host (HTTP/1.0, not a browser) is answered', async () => {
  const { server, port } = await listener();
  try {
    const text = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => socket.end('GET /healthz HTTP/1.0\r\n\r\n'));
      let out = '';
      socket.setEncoding('utf8').on('data', (c: string) => (out += c));
      socket.on('end', () => resolve(out));
      socket.on('error', reject);
    });
    assert.match(text, /^HTTP\/1\.[01] 200 /);
  } finally {
    await server.close();
  }
});

test('POST /-/reload is off unless enabled, and never taken from another site', async () => {
  const off = await listener(await optionsFrom('  listen: 127.0.0.1:0\n'));
  try {
    const refused = await ask(`${off.base}/-/reload`, { method: 'POST' });
    assert.equal(refused.status, 403);
    assert.match(refused.text, /server\.enable_reload: true.*SIGHUP/);
    assert.equal(off.reloads(), 0);
    assert.equal((await ask(`${off.base}/-/reload`)).status, 405, 'GET is still no reload');
  } finally {
    await off.server.close();
  }

  const on = await listener(await optionsFrom('  enable_reload: true\n'));
  try {
    const own = on.base;
    const crossSite: [string, Record<string, string>, RegExp][] = [
      ['a form post (text/plain)', { 'content-type': 'text/plain' }, /Content-Type text\/plain/],
      ['a form post (urlencoded)', { 'content-type': 'application/x-www-form-urlencoded' }, /Content-Type application\/x-www-form-urlencoded/],
      ['a form post (multipart)', { 'content-type': 'multipart/form-data; boundary=x' }, /Content-Type multipart\/form-data/],
      ['a foreign Origin', { origin: 'https://evil.example', 'content-type': 'application/json' }, /"https:\/\/evil\.example", not from this listener/],
      ['Origin: null', { origin: 'null' }, /"null"/],
      ['another port of the same host', { origin: 'http://127.0.0.1:1' }, /not from this listener/],
      ['Sec-Fetch-Site: cross-site', { 'sec-fetch-site': 'cross-site' }, /Sec-Fetch-Site: cross-site/],
      ['Sec-Fetch-Site: same-site', { 'sec-fetch-site': 'same-site' }, /Sec-Fetch-Site: same-site/],
    ];
    for (const [what, headers, reason] of crossSite) {
      const res = await ask(`${own}/-/reload`, { method: 'POST', headers, body: 'x' });
      assert.equal(res.status, 403, what);
      assert.match(res.text, /^POST \/-\/reload refused: /, what);
      assert.match(res.text, reason, what);
    }
    assert.equal(on.reloads(), 0, 'no refused request reloaded');

    for (const headers of [{}, { 'content-type': 'application/json' }, { origin: own }, { origin: own, 'sec-fetch-site': 'same-origin' }, { 'sec-fetch-site': 'none' }]) {
      const res = await ask(`${own}/-/reload`, { method: 'POST', headers });
      assert.equal(res.status, 200, JSON.stringify(headers));
    }
    assert.equal(on.reloads(), 5);
  } finally {
    await on.server.close();
  }
});

test('basic auth: bcrypt hash, 401 without or with wrong credentials, health probes exempt but Host-checked', async () => {
  const hash = bcrypt.hashSync('correct horse', 4);
  // htpasswd writes $2y$: the same algorithm
  const options = await optionsFrom(`  basic_auth: {username: ops, password_hash: "${hash.replace(/^\$2b\$/, '$$2y$$')}"}\n`);
  const { server, base, port } = await listener(options);
  const basic = (user: string, pass: string): Record<string, string> => ({ authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` });
  try {
    for (const path of ['/targets', '/', '/metrics', '/debug/pprof/']) {
      const res = await ask(`${base}${path}`);
      assert.equal(res.status, 401, path);
      assert.equal(res.headers['www-authenticate'], 'Basic realm="pprof-scraper", charset="UTF-8"');
    }
    for (const headers of [basic('ops', 'wrong'), basic('root', 'correct horse'), basic('ops', ''), { authorization: 'Bearer x' }, { authorization: 'Basic !!!' }]) {
      assert.equal((await ask(`${base}/targets`, { headers })).status, 401, JSON.stringify(headers));
    }
    const right = await ask(`${base}/targets`, { headers: basic('ops', 'correct horse') });
    assert.equal(right.status, 200, right.text);
    // again, from the cache of verified credentials
    assert.equal((await ask(`${base}/targets`, { headers: basic('ops', 'correct horse') })).status, 200);
    assert.equal((await ask(`${base}/targets`, { headers: basic('ops', 'correct horsf') })).status, 401);

    assert.equal((await ask(`${base}/healthz`)).status, 200, 'the container HEALTHCHECK needs no credentials');
    assert.equal((await ask(`${base}/-/ready`)).status, 200);
    assert.equal((await ask(`${base}/healthz`, { headers: { host: `rebind.example:${port}` } })).status, 421);

    // a reload with another password: the old one stops working at once
    server.configure(await optionsFrom(`  basic_auth: {username: ops, password_hash: "${bcrypt.hashSync('battery staple', 4)}"}\n`));
    assert.equal((await ask(`${base}/targets`, { headers: basic('ops', 'correct horse') })).status, 401);
    assert.equal((await ask(`${base}/targets`, { headers: basic('ops', 'battery staple') })).status, 200);
    server.configure({});
    assert.equal((await ask(`${base}/targets`)).status, 200, 'basic_auth removed by a reload');
  } finally {
    await server.close();
  }
});

test('basic_auth and allowed_hosts errors name the key and what to do', async () => {
  assert.match(configErrors('  basic_auth: {username: ops, password_hash: hunter2}\n'), /server\.basic_auth\.password_hash: password_hash is not a bcrypt hash .*htpasswd -nBC 10/);
  assert.doesNotMatch(configErrors('  basic_auth: {username: ops, password_hash: hunter2}\n'), /hunter2/, 'the value is not printed');
  assert.match(configErrors('  basic_auth: {username: ops}\n'), /server\.basic_auth: basic_auth needs exactly one of password_hash or password_hash_file/);
  assert.match(configErrors('  allowed_hosts: ["status.example.com:10101", "http://x"]\n'), /server\.allowed_hosts\[0\]: .*"status\.example\.com:10101" must be a bare host name/);
  assert.match(configErrors('  enable_reload: yes please\n'), /server\.enable_reload/);

  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-listener-'));
  try {
    await writeFile(join(dir, 'hash'), `${bcrypt.hashSync('pw', 4)}\n`);
    const fromFile = await optionsFrom('  basic_auth: {username: ops, password_hash_file: hash}\n', dir);
    assert.equal(await bcrypt.compare('pw', fromFile.basicAuth?.passwordHash.reveal() ?? ''), true, 'read from the file, relative to the config');
    await writeFile(join(dir, 'hash'), 'plain-password\n');
    await assert.rejects(optionsFrom('  basic_auth: {username: ops, password_hash_file: hash}\n', dir), (err: Error) => {
      assert.match(err.message, new RegExp(`server\\.basic_auth\\.password_hash_file ${join(dir, 'hash')} does not hold a bcrypt hash`));
      assert.doesNotMatch(err.message, /plain-password/);
      return true;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});


/** A CA, a server certificate for 127.0.0.1 signed by it, and a client certificate. */
async function makeCerts(dir: string): Promise<void> {
  const openssl = (args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=listener-test-ca']);
  for (const [name, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'],
    ['client', 'extendedKeyUsage=clientAuth\n'],
  ] as const) {
    await writeFile(join(dir, `${name}.ext`), ext);
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`]);
  }
}

void test('TLS: https answers, plain http does not; client_ca_file requires a client certificate', { skip: SKIP_WITHOUT_OPENSSL }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-listener-tls-'));
  try {
    await makeCerts(dir);
    const ca = await readFile(join(dir, 'ca.pem'));
    const { server, base } = await listener(await optionsFrom('  tls: {cert_file: server.pem, key_file: server.key}\n', dir));
    try {
      assert.match(base, /^https:/);
      const res = await ask(`${base}/targets`, { tls: { ca } });
      assert.equal(res.status, 200, res.text);
      await assert.rejects(ask(`${base.replace(/^https/, 'http')}/targets`, { timeoutMs: 5_000 }), 'plain http gets no answer');
      await assert.rejects(ask(`${base}/targets`), /self-signed|unable to verify|certificate/i, 'the certificate is checked');
      // a cross-site check on https compares with the https origin
      server.configure({ ...server.options, enableReload: true });
      assert.equal((await ask(`${base}/-/reload`, { method: 'POST', headers: { origin: base }, tls: { ca } })).status, 200);
    } finally {
      await server.close();
    }

    const mtls = await listener(await optionsFrom('  tls: {cert_file: server.pem, key_file: server.key, client_ca_file: ca.pem}\n', dir));
    try {
      await assert.rejects(ask(`${mtls.base}/targets`, { tls: { ca }, timeoutMs: 5_000 }), 'no client certificate');
      const withCert = await ask(`${mtls.base}/targets`, { tls: { ca, cert: await readFile(join(dir, 'client.pem')), key: await readFile(join(dir, 'client.key')) } });
      assert.equal(withCert.status, 200);
    } finally {
      await mtls.server.close();
    }

    await assert.rejects(optionsFrom('  tls: {cert_file: server.pem, key_file: client.key}\n', dir), /server\.tls: cannot serve with cert_file .*server\.pem and key_file .*client\.key: .*the key belongs to the certificate/);
    assert.match(configErrors('  tls: {cert_file: /nonexistent/server.pem, key_file: /nonexistent/server.key}\n'), /server\.tls\.cert_file: cannot read file "\/nonexistent\/server\.pem": ENOENT/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('own CPU profile: seconds capped at 30, one at a time, refused cross-site', async () => {
  const { server, base } = await listener();
  try {
    for (const seconds of ['300', '31', '0', 'abc', '1.5']) {
      const res = await ask(`${base}/debug/pprof/profile?seconds=${seconds}`, { timeoutMs: 5_000 });
      assert.equal(res.status, 400, `seconds=${seconds}`);
      assert.match(res.text, /1 to 30 seconds at a time; ask for 30 or fewer/);
    }
    const crossSite = await ask(`${base}/debug/pprof/profile?seconds=1`, { headers: { 'sec-fetch-site': 'cross-site' }, timeoutMs: 5_000 });
    assert.equal(crossSite.status, 403);
    assert.match(crossSite.text, /^GET \/debug\/pprof\/profile refused/);

    const both = await Promise.all([ask(`${base}/debug/pprof/profile?seconds=2`), ask(`${base}/debug/pprof/profile?seconds=2`)]);
    const statuses = both.map((r) => r.status).sort();
    assert.deepEqual(statuses, [200, 429], both.map((r) => r.text).join(' | '));
    const busy = both.find((r) => r.status === 429);
    assert.match(busy?.text ?? '', /already running, and one runs at a time: retry in [12] s/);
    assert.match(String(busy?.headers['retry-after']), /^[12]$/);
    // the first one finished: the profiler is free again
    assert.equal((await ask(`${base}/debug/pprof/profile?seconds=1`)).status, 200);
  } finally {
    await server.close();
  }
});
