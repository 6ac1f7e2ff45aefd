/**
 * The daemon scrapes a real Go program and ships its profiles over OTLP
 * (http/protobuf and grpc) and to Parca (gRPC WriteRaw), to the loopback
 * fakes of test/helpers/grpc-fake.ts, and as scraped to a directory. An
 * independent decoder (protoc's Python code from the vendored .proto files,
 * test/helpers/otlp-decoder.ts) reads what the fakes received, and the test
 * compares it stack by stack with the directory's copy of each scrape; for
 * deltas, with the difference of two consecutive scrapes.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Profile } from 'pprof-format';
import { parseConfig } from '../../src/config/index.js';
import { Daemon } from '../../src/daemon.js';
import { silentLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';
import { tempDir } from '../helpers/delivery.js';
import { skipWithoutGo, startGoTarget } from '../helpers/go-target.js';
import { ProfilesFake } from '../helpers/grpc-fake.js';
import { decodeOtlpRequests, decodeParcaRequests, skipWithoutDecoder } from '../helpers/otlp-decoder.js';
import type { DecodedOtlp } from '../helpers/otlp-decoder.js';
import { expectedAllocsDelta, rawScrapes, sampleTypes, valuesByStack } from '../helpers/pprof-stacks.js';
import { waitUntil } from '../helpers/wait.js';

const skip = (await skipWithoutGo()) || (await skipWithoutDecoder());

/** The raw scrapes of one service and type in the directory repository: bytes and decoded, by TimeNanos. */
/** Per sample type of a pprof profile, its non-zero values by stack (the key otlp_decode.py writes too). */
function expectedStacks(rows: Map<string, number[]>, index: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [stack, row] of rows) if (row[index] !== 0) out[stack] = row[index]!;
  return out;
}

/** The one resource profile of a decoded request, and the configured type it says. */
function only(decoded: DecodedOtlp) {
  assert.deepEqual(decoded.zero, { string: true, mapping: true, location: true, function: true, attribute: true, stack: true, link: true }, 'every dictionary table starts with its zero value');
  assert.equal(decoded.resources.length, 1);
  const resource = decoded.resources[0]!;
  assert.equal(resource.scopes.length, 1);
  const scope = resource.scopes[0]!;
  const type = scope.profiles[0]?.attributes.find((a) => a.startsWith('pprof.profile.type='))?.slice('pprof.profile.type='.length);
  return { resource, scope, type };
}

void test('OTLP (http/protobuf, grpc) and Parca get a real Go target\'s profiles; the independent decoder agrees stack by stack', { skip, timeout: 300_000 }, async () => {
  const target = await startGoTarget({ host: '127.0.0.1' });
  const http = new ProfilesFake('http');
  const grpc = new ProfilesFake('grpc');
  const parca = new ProfilesFake('grpc');
  const { dir, cleanup } = await tempDir('pprof-otlp-');
  const raw = join(dir, 'raw');
  const yaml = `
scrape: {interval: 2s, timeout: 5s, labels: {env: test}}
profiles:
  heap: {path: /debug/pprof/heap}
  goroutine: {path: /debug/pprof/goroutine}
  cpu: {path: /debug/pprof/profile, seconds: 1}
discovery:
  - static: {service: go-target, targets: ["${target.address}"], labels: {team: core}}
repositories:
  - otlp: {name: otlp-http, endpoint: "http://127.0.0.1:${await http.listen()}", protocol: http/protobuf, cumulative: as_scraped}
  - otlp: {name: otlp-grpc, endpoint: "http://127.0.0.1:${await grpc.listen()}", protocol: grpc, compression: none, cumulative: as_scraped}
  - parca: {url: "127.0.0.1:${await parca.listen()}", insecure: true}
  - directory: {path: ${JSON.stringify(raw)}}
server: {listen: "127.0.0.1:0"}
state_dir: ${JSON.stringify(join(dir, 'state'))}
`;
  const daemon = new Daemon({ logger: silentLogger(), metrics: createMetrics({ defaultMetrics: false }) });
  try {
    await daemon.apply(parseConfig(yaml, 'test.yaml', { baseDir: dir }));
    // two of each of the three types, at each peer
    await waitUntil('6 profiles at each peer', () => http.received.length >= 6 && grpc.received.length >= 6 && parca.received.length >= 6, { timeoutMs: 60_000 });
    await daemon.stop({ scrapeDeadlineMs: 3000, sendDeadlineMs: 3000 });
    for (const fake of [http, grpc, parca]) assert.deepEqual(fake.refused, [], 'no request failed the receivers\' checks');

    const scrapes = new Map<string, Map<bigint, { bytes: Buffer; profile: Profile }>>();
    for (const type of ['heap', 'goroutine', 'cpu']) scrapes.set(type, await rawScrapes(raw, 'go-target', type));

    for (const [fake, name] of [[http, 'http/protobuf'], [grpc, 'grpc']] as const) {
      const decoded = await decodeOtlpRequests(fake.received.map((r) => r.bytes));
      const seen = new Set<string>();
      for (const request of decoded) {
        const { resource, scope, type } = only(request);
        assert.ok(type !== undefined && scrapes.has(type), `${name}: a profile of a scraped type (${type})`);
        seen.add(type);
        assert.equal(scope.name, 'pprof-scraper');
        assert.equal(resource.attributes['service.name'], 'go-target');
        assert.equal(resource.attributes['instance'], target.address);
        assert.equal(resource.attributes['service.instance.id'], target.address);
        assert.equal(resource.attributes['team'], 'core');
        assert.equal(resource.attributes['env'], 'test');
        const time = BigInt(scope.profiles[0]!.time_unix_nano);
        const scrape = scrapes.get(type)!.get(time);
        assert.ok(scrape, `${name}: ${type} at ${time} is one of the directory's scrapes`);
        const pprof = scrape.profile;
        const rows = valuesByStack(pprof);
        const types = sampleTypes(pprof);
        assert.deepEqual(scope.profiles.map((p) => p.sample_type), types, 'one profile per sample type, in pprof\'s order');
        scope.profiles.forEach((p, i) => {
          const unit = pprof.stringTable.strings[Number(pprof.sampleType[i]!.unit)];
          assert.equal(p.unit, unit);
          assert.equal(String(p.period), String(pprof.period));
          assert.equal(p.duration_nano, String(pprof.durationNanos));
          assert.deepEqual(p.stacks, expectedStacks(rows, i), `${name}: ${type} ${p.sample_type}: every stack's value as scraped`);
        });
        assert.ok(Object.keys(scope.profiles[0]!.stacks).length > 0, 'with stacks in it');
      }
      assert.deepEqual([...seen].sort(), ['cpu', 'goroutine', 'heap'], `${name}: every type arrived`);
    }

    // Parca gets each scrape's bytes as scraped, under Parca's labels
    const written = await decodeParcaRequests(parca.received.map((r) => r.bytes));
    const byHash = new Map<string, string>();
    for (const [type, m] of scrapes) for (const { bytes } of m.values()) byHash.set(createHash('sha256').update(bytes).digest('hex'), type);
    for (const request of written) {
      assert.equal(request.series.length, 1);
      const series = request.series[0]!;
      const labels = new Map(series.labels);
      const type = byHash.get(series.samples[0]!);
      assert.ok(type !== undefined, 'the raw profile is byte for byte one of the scrapes');
      assert.equal(labels.get('__name__'), { heap: 'memory', goroutine: 'goroutine', cpu: 'process_cpu' }[type]);
      assert.equal(labels.get('job'), 'go-target');
      assert.equal(labels.get('instance'), target.address);
      assert.equal(labels.get('team'), 'core');
    }
  } finally {
    await daemon.stop({ scrapeDeadlineMs: 1000, sendDeadlineMs: 1000 });
    await Promise.all([http.close(), grpc.close(), parca.close(), target.stop()]);
    await cleanup();
  }
});

void test('OTLP over grpc gets deltas of a real Go allocs profile equal to the difference of consecutive raw scrapes', { skip, timeout: 300_000 }, async () => {
  const target = await startGoTarget({ host: '127.0.0.1' });
  const grpc = new ProfilesFake('grpc');
  const { dir, cleanup } = await tempDir('pprof-otlp-delta-');
  const raw = join(dir, 'raw');
  const yaml = `
scrape: {interval: 1s, timeout: 5s}
profiles:
  allocs: {path: /debug/pprof/allocs}
discovery:
  - static: {service: go-target, targets: ["${target.address}"]}
repositories:
  - otlp: {endpoint: "http://127.0.0.1:${await grpc.listen()}", protocol: grpc}
  - directory: {path: ${JSON.stringify(raw)}}
server: {listen: "127.0.0.1:0"}
state_dir: ${JSON.stringify(join(dir, 'state'))}
`;
  const daemon = new Daemon({ logger: silentLogger(), metrics: createMetrics({ defaultMetrics: false }) });
  try {
    await daemon.apply(parseConfig(yaml, 'test.yaml', { baseDir: dir }));
    await waitUntil('3 deltas', () => grpc.received.length >= 3, { timeoutMs: 60_000 });
    await daemon.stop({ scrapeDeadlineMs: 2000, sendDeadlineMs: 2000 });
    assert.deepEqual(grpc.refused, []);
    const scrapes = await rawScrapes(raw, 'go-target', 'allocs');
    const times = [...scrapes.keys()].sort((a, b) => (a < b ? -1 : 1));
    const decoded = await decodeOtlpRequests(grpc.received.map((r) => r.bytes));
    let changed = 0;
    for (const request of decoded) {
      const { scope, type } = only(request);
      assert.equal(type, 'allocs');
      const newer = BigInt(scope.profiles[0]!.time_unix_nano);
      const older = newer - BigInt(scope.profiles[0]!.duration_nano);
      const i = times.indexOf(newer);
      assert.ok(i > 0, 'the delta carries the newer scrape\'s time, and an older scrape exists');
      assert.equal(times[i - 1], older, 'the delta covers the time since the scrape just before');
      const delta = expectedAllocsDelta(valuesByStack(scrapes.get(older)!.profile), valuesByStack(scrapes.get(newer)!.profile));
      assert.deepEqual(scope.profiles.map((p) => p.sample_type), ['alloc_objects', 'alloc_space', 'inuse_objects', 'inuse_space']);
      scope.profiles.forEach((p, j) => {
        const want = expectedStacks(delta, j);
        // a stack whose alloc_* did not change and whose inuse_* are 0 is left out of the delta altogether
        const got = p.stacks;
        for (const [stack, v] of Object.entries(got)) assert.equal(v, want[stack], `${p.sample_type} ${stack}`);
        if (j < 2) {
          assert.deepEqual(got, want, `${p.sample_type}: every stack's delta`);
          changed += Object.keys(got).length;
        }
      });
    }
    assert.ok(changed > 0, 'some stacks allocated between scrapes');
  } finally {
    await daemon.stop({ scrapeDeadlineMs: 1000, sendDeadlineMs: 1000 });
    await Promise.all([grpc.close(), target.stop()]);
    await cleanup();
  }
});
