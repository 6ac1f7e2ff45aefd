import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Server } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../../src/config/index.js';
import { Daemon } from '../../src/daemon.js';
import { silentLogger } from '../../src/log.js';
import { makeTestCerts, SKIP_WITHOUT_OPENSSL } from '../helpers/certs.js';
import { waitUntil } from '../helpers/wait.js';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures');

void test('TLS (CA, client certificate, skip-verify), bearer and basic auth reach their targets; secrets stay out of the report', { timeout: 60_000, skip: SKIP_WITHOUT_OPENSSL }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-tls-'));
  const heap = await readFile(join(FIXTURES, 'heap.pb.gz'));
  makeTestCerts(dir);
  await writeFile(join(dir, 'token'), 'tok-123\n');
  await writeFile(join(dir, 'password'), 'pw-456\n');

  const seen: { port: number; headers: IncomingHttpHeaders; clientCert: string | undefined }[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const socket = req.socket as TLSSocket;
    const cert = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
    seen.push({ port: (req.socket.address() as AddressInfo).port, headers: req.headers, clientCert: [cert?.subject?.CN].flat()[0] });
    const auth = req.headers.authorization;
    if (auth !== 'Bearer tok-123' && auth !== `Basic ${Buffer.from('scraper:pw-456').toString('base64')}` && [cert?.subject?.CN].flat()[0] !== 'client' && !socket.encrypted) {
      res.writeHead(401).end('unauthorized');
      return;
    }
    res.writeHead(200).end(heap);
  };
  const tlsOptions = { key: await readFile(join(dir, 'server.key')), cert: await readFile(join(dir, 'server.pem')) };
  const mtls = createHttpsServer({ ...tlsOptions, ca: await readFile(join(dir, 'ca.pem')), requestCert: true, rejectUnauthorized: true }, handler);
  const tls = createHttpsServer(tlsOptions, handler);
  const plain = createServer(handler);
  const listen = async (s: Server): Promise<number> => {
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    return (s.address() as AddressInfo).port;
  };
  const [mtlsPort, tlsPort, plainPort] = [await listen(mtls), await listen(tls), await listen(plain)];
  const daemon = new Daemon({ logger: silentLogger() });
  try {
    await daemon.apply(
      parseConfig(
        `
scrape:
  interval: 1s
  timeout: 2s
  bearer_token_file: token
profiles: {heap: {path: /debug/pprof/heap}}
discovery:
  - static:
      targets: ["https://127.0.0.1:${mtlsPort}"]
      tls: {ca_file: ca.pem, cert_file: client.pem, key_file: client.key}
  - static:
      targets: ["https://127.0.0.1:${tlsPort}"]
      tls: {insecure_skip_verify: true}
  - static:
      targets: ["https://127.0.0.1:${tlsPort}/verify"]
  - static:
      targets: ["127.0.0.1:${plainPort}"]
  - static:
      targets: ["127.0.0.1:${plainPort}"]
      path: /basic
      basic_auth: {username: scraper, password_file: password}
repositories:
  - directory: {path: ${join(dir, 'out')}}
server: {listen: "127.0.0.1:0"}
state_dir: ${join(dir, 'state')}
`,
        'auth.yaml',
        { baseDir: dir, env: {} },
      ),
    );
    const results = await waitUntil('one result per target', () => {
      const r = daemon.report().targets.map((t) => [t.profiles[0]?.url, t.last?.['heap']?.result, t.last?.['heap']?.error] as const);
      return r.every(([, result]) => result !== undefined) ? r : undefined;
    }, { timeoutMs: 15_000 });
    const byUrl = new Map(results.map(([url, result, error]) => [url, { result, error }]));
    assert.equal(byUrl.get(`https://127.0.0.1:${mtlsPort}/debug/pprof/heap`)?.result, 'success');
    assert.equal(byUrl.get(`https://127.0.0.1:${tlsPort}/debug/pprof/heap`)?.result, 'success');
    // without the CA, an unknown certificate is refused, and the reason says what to do
    const unverified = byUrl.get(`https://127.0.0.1:${tlsPort}/verify/heap`);
    assert.equal(unverified?.result, 'network');
    assert.match(unverified?.error ?? '', /^TLS: .*: set tls\.ca_file, or tls\.insecure_skip_verify for testing$/);
    assert.equal(byUrl.get(`http://127.0.0.1:${plainPort}/debug/pprof/heap`)?.result, 'success');
    assert.equal(byUrl.get(`http://127.0.0.1:${plainPort}/basic/heap`)?.result, 'success');

    assert.ok(seen.some((s) => s.port === mtlsPort && s.clientCert === 'client'), 'the client certificate was presented');
    assert.ok(seen.some((s) => s.port === plainPort && s.headers.authorization === 'Bearer tok-123'), 'scrape: bearer token');
    assert.ok(seen.some((s) => s.port === plainPort && s.headers.authorization === `Basic ${Buffer.from('scraper:pw-456').toString('base64')}`), 'the block\'s basic auth replaces scrape:\'s token');
    const report = JSON.stringify(daemon.report());
    for (const secret of ['tok-123', 'pw-456']) assert.ok(!report.includes(secret));
  } finally {
    await daemon.stop({ scrapeDeadlineMs: 100 });
    for (const s of [mtls, tls, plain]) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
    await rm(dir, { recursive: true, force: true });
  }
});
