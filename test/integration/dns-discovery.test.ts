/**
 * The dns provider against a DNS server on loopback (dns2), started here:
 * SRV, A and AAAA answers, NXDOMAIN as an empty answer, and SERVFAIL or no
 * answer at all keeping the name's last good records.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import dns2 from 'dns2';
import { ProviderRunner } from '../../src/discovery/index.js';
import { DiscoveryError } from '../../src/discovery/provider.js';
import { createDnsProvider } from '../../src/discovery/providers/dns.js';
import { createMetrics } from '../../src/metrics.js';
import { buildTargets } from '../../src/targets/index.js';
import type { Discovered } from '../../src/targets/index.js';
import { captureLogger } from '../helpers/log.js';
import { metricSum } from '../helpers/metrics.js';
import { config } from '../helpers/targets.js';
import { waitUntil } from '../helpers/wait.js';

const { Packet } = dns2;

interface Zone {
  srv: Record<string, { target: string; port: number }[]>;
  a: Record<string, string[]>;
  aaaa: Record<string, string[]>;
  /** Names answered with SERVFAIL. */
  servfail: Set<string>;
  /** Names never answered. */
  silent: Set<string>;
}

const zone: Zone = { srv: {}, a: {}, aaaa: {}, servfail: new Set(), silent: new Set() };

const server = dns2.createServer({
  udp: true,
  handle: (request, send) => {
    const response = Packet.createResponseFromRequest(request);
    const question = request.questions[0];
    if (!question) return void send(response);
    const name = question.name;
    if (zone.silent.has(name)) return;
    if (zone.servfail.has(name)) {
      response.header.rcode = 2;
      return void send(response);
    }
    const base = { name, class: Packet.CLASS.IN, ttl: 30 };
    if (question.type === Packet.TYPE.SRV && zone.srv[name]) {
      for (const r of zone.srv[name]) response.answers.push({ ...base, type: Packet.TYPE.SRV, priority: 10, weight: 10, port: r.port, target: r.target } as never);
    } else if (question.type === Packet.TYPE.A && zone.a[name]) {
      for (const ip of zone.a[name]) response.answers.push({ ...base, type: Packet.TYPE.A, address: ip } as never);
    } else if (question.type === Packet.TYPE.AAAA && zone.aaaa[name]) {
      for (const ip of zone.aaaa[name]) response.answers.push({ ...base, type: Packet.TYPE.AAAA, address: ip } as never);
    } else if (!zone.srv[name] && !zone.a[name] && !zone.aaaa[name]) {
      response.header.rcode = 3; // NXDOMAIN
    }
    void send(response);
  },
});
let nameserver = '';

before(async () => {
  const addresses = await server.listen({ udp: { port: 0, address: '127.0.0.1' } });
  nameserver = `127.0.0.1:${addresses.udp?.port ?? 0}`;
});
after(() => server.close());

function block(yaml: string) {
  const c = config(`discovery:\n  - dns: {nameservers: ["${nameserver}"], ${yaml}}`);
  const b = c.discovery[0]?.dns;
  assert.ok(b);
  return { c, b };
}

const addresses = (found: readonly Discovered[] | undefined): string[] => (found ?? []).map((d) => d.address ?? '?');

describe('answers', () => {
  test('SRV: each record\'s target and port, with Prometheus\'s __meta_dns_* labels', async () => {
    zone.srv['_pprof._tcp.example.test'] = [
      { target: 'api-1.example.test', port: 6060 },
      { target: 'api-2.example.test', port: 7070 },
    ];
    const { c, b } = block('names: [_pprof._tcp.example.test]');
    const found = await createDnsProvider(b, 0, { logger: captureLogger().logger }).refresh(AbortSignal.timeout(15_000));
    assert.deepEqual(addresses(found).sort(), ['api-1.example.test:6060', 'api-2.example.test:7070']);
    const one = found.find((d) => d.address === 'api-1.example.test:6060');
    assert.deepEqual(one?.meta, { __meta_dns_name: '_pprof._tcp.example.test', __meta_dns_srv_record_target: 'api-1.example.test', __meta_dns_srv_record_port: '6060' });
    const { targets } = buildTargets(c, [{ source: 0, provider: 'dns', targets: found }]);
    assert.deepEqual(targets.map((t) => [t.service, t.address]).sort(), [
      ['api-1.example.test', 'api-1.example.test:6060'],
      ['api-2.example.test', 'api-2.example.test:7070'],
    ]);
  });

  test('A and AAAA: the block\'s port, else 6060', async () => {
    zone.a['api.example.test'] = ['10.0.0.5', '10.0.0.6'];
    zone.aaaa['api6.example.test'] = ['fd00::5'];
    const a = block('names: [api.example.test], type: A, port: 7070');
    const foundA = await createDnsProvider(a.b, 0, { logger: captureLogger().logger }).refresh(AbortSignal.timeout(15_000));
    assert.deepEqual(buildTargets(a.c, [{ source: 0, provider: 'dns', targets: foundA }]).targets.map((t) => t.address).sort(), ['10.0.0.5:7070', '10.0.0.6:7070']);
    const aaaa = block('names: [api6.example.test], type: aaaa');
    const found6 = await createDnsProvider(aaaa.b, 0, { logger: captureLogger().logger }).refresh(AbortSignal.timeout(15_000));
    assert.deepEqual(buildTargets(aaaa.c, [{ source: 0, provider: 'dns', targets: found6 }]).targets.map((t) => t.address), ['[fd00::5]:6060']);
  });

  test('NXDOMAIN is an empty answer, not a failure', async () => {
    const { b } = block('names: [nothing.example.test], type: A');
    assert.deepEqual(await createDnsProvider(b, 0, { logger: captureLogger().logger }).refresh(AbortSignal.timeout(15_000)), []);
  });
});

test('SERVFAIL keeps the name\'s last good records (the other names still change), and is counted', async () => {
  zone.a['web.example.test'] = ['10.0.1.1'];
  zone.a['db.example.test'] = ['10.0.2.1'];
  const { b } = block('names: [web.example.test, db.example.test], type: A, refresh: 1s');
  const metrics = createMetrics({ defaultMetrics: false });
  const runner = new ProviderRunner(createDnsProvider(b, 0, { logger: captureLogger().logger }), { logger: captureLogger().logger, metrics, onChange: () => undefined });
  try {
    await waitUntil('the first answer', () => addresses(runner.state.found).join() === '10.0.1.1,10.0.2.1', { timeoutMs: 15_000 });
    zone.servfail.add('web.example.test');
    zone.a['db.example.test'] = ['10.0.2.2'];
    await waitUntil('the SERVFAIL reported', () => runner.state.error?.includes('A web.example.test: the name server answered SERVFAIL'), { timeoutMs: 15_000 });
    await waitUntil('db\'s change applied beside web\'s last good records', () => addresses(runner.state.found).join() === '10.0.1.1,10.0.2.2', { timeoutMs: 15_000 });
    assert.ok((await metricSum(metrics.discoveryFailures, { provider: 'dns' })) >= 1);
    zone.servfail.delete('web.example.test');
    zone.a['web.example.test'] = ['10.0.1.2'];
    await waitUntil('recovered', () => addresses(runner.state.found).join() === '10.0.1.2,10.0.2.2' && runner.state.error === undefined, { timeoutMs: 15_000 });
  } finally {
    await runner.stop();
  }
});

test('a server that never answers: a timeout error naming the name, nothing published from nothing', async () => {
  zone.silent.add('slow.example.test');
  const { b } = block('names: [slow.example.test], type: A');
  const provider = createDnsProvider(b, 0, { logger: captureLogger().logger });
  await assert.rejects(provider.refresh(AbortSignal.timeout(30_000)), (err: unknown) => {
    assert.ok(err instanceof DiscoveryError);
    assert.match(err.message, /^discovery\[0\]\.dns: A slow\.example\.test: no answer within 10s/);
    assert.deepEqual(err.answer, []);
    return true;
  });
});
