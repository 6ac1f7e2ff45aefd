/**
 * A Go execution trace in every repository: profefe stores it as type trace,
 * directory and s3 keep it as a `.trace` file, Pyroscope, OTLP and Parca
 * (pprof only) skip it and say so once, and the status page hands it out as
 * a `.trace`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import type { ScrapedProfile } from '../../src/profiles/profile.js';
import { parseConfig } from '../../src/config/index.js';
import { createDirectoryRepository } from '../../src/repositories/directory.js';
import { createRepository } from '../../src/repositories/factory.js';
import { createProfefeRepository, profefeCreatedAt } from '../../src/repositories/profefe.js';
import { createPyroscopeRepository } from '../../src/repositories/pyroscope.js';
import { s3Key } from '../../src/repositories/s3.js';
import { lastProfileLink, statusRoutes } from '../../src/server/routes.js';
import { startStatusServer } from '../../src/server/server.js';
import { silentLogger } from '../../src/log.js';
import { captureLogger } from '../helpers/log.js';
import { staticStatusSource } from '../helpers/status-source.js';
import { startProfefeFake } from '../helpers/profefe-fake.js';
import type { ProfefeFake } from '../helpers/profefe-fake.js';
import { scrapedProfile } from '../helpers/profiles.js';
import { pyroscopeConfig, startPyroscopeFake } from '../helpers/pyroscope-fake.js';

const TIME = Date.UTC(2026, 10, 25, 8, 58, 0, 123);

/** A Go 1.22 header and a few event bytes: what /debug/pprof/trace serves, in short. */
const TRACE_BYTES = Buffer.concat([Buffer.from('go 1.22 trace\0\0\0', 'latin1'), Buffer.from([0x41, 0x01, 0x8c, 0xcb, 0x91, 0xd0])]);

function traceProfile(over: Partial<ScrapedProfile> = {}): ScrapedProfile {
  return scrapedProfile({
    type: 'trace',
    labels: { instance: '10.0.0.7:6060', provider: 'static' },
    time: TIME,
    durationMs: 1000,
    sampleCount: 0,
    url: 'http://10.0.0.7:6060/debug/pprof/trace?seconds=1',
    targetTypes: ['cpu', 'trace'],
    data: TRACE_BYTES,
    ...over,
  });
}

describe('profefe takes traces', () => {
  let fake: ProfefeFake;
  before(async () => {
    fake = await startProfefeFake();
  });
  after(async () => {
    await fake.close();
  });

  test('sent as type trace, body as scraped, with created_at: no samples does not make a trace empty', async () => {
    const repo = await createProfefeRepository('profefe', { url: fake.url, headers: {} } as never);
    assert.deepEqual(await repo.send(traceProfile(), AbortSignal.timeout(5000)), { status: 'ok' });
    const got = fake.received.at(-1);
    assert.equal(got?.type, 'trace');
    assert.equal(got?.service, 'billing');
    assert.equal(got?.createdAt, profefeCreatedAt(TIME));
    assert.deepEqual(got?.body, TRACE_BYTES);
    assert.deepEqual(Object.fromEntries(got?.labels ?? []), { instance: '10.0.0.7:6060', provider: 'static' });
    await repo.close();
  });
});

describe('directory and s3 keep traces as .trace files', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-trace-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('directory: {time}_{instance}.trace, raw bytes, a sidecar without a sample count; a second one gets _2', async () => {
    const repo = createDirectoryRepository('directory', { path: dir } as never);
    assert.deepEqual(await repo.send(traceProfile(), AbortSignal.timeout(5000)), { status: 'ok' });
    assert.deepEqual(await repo.send(traceProfile(), AbortSignal.timeout(5000)), { status: 'ok' });
    const folder = join(dir, 'billing', 'trace');
    assert.deepEqual((await readdir(folder)).sort(), [
      '20261125T085800.123Z_10.0.0.7_6060.json',
      '20261125T085800.123Z_10.0.0.7_6060.trace',
      '20261125T085800.123Z_10.0.0.7_6060_2.json',
      '20261125T085800.123Z_10.0.0.7_6060_2.trace',
    ]);
    assert.deepEqual(await readFile(join(folder, '20261125T085800.123Z_10.0.0.7_6060.trace')), TRACE_BYTES);
    const sidecar = JSON.parse(await readFile(join(folder, '20261125T085800.123Z_10.0.0.7_6060.json'), 'utf8'));
    assert.equal(sidecar.type, 'trace');
    assert.equal(sidecar.duration_ms, 1000);
    assert.equal('samples' in sidecar, false, 'a trace has no samples to count');
    await repo.close();
  });

  test('directory: retention counts and removes .trace files too', async () => {
    const root = join(dir, 'retained');
    const repo = createDirectoryRepository('directory', { path: root, retention: { max_size: 1 } } as never);
    assert.deepEqual(await repo.send(traceProfile(), AbortSignal.timeout(5000)), { status: 'ok' });
    assert.deepEqual((await readdir(join(root, 'billing', 'trace'))).sort(), ['20261125T085800.123Z_10.0.0.7_6060.json', '20261125T085800.123Z_10.0.0.7_6060.trace']);
    const swept = await repo.sweep();
    assert.equal(swept.removedFiles, 2);
    assert.deepEqual(await readdir(join(root, 'billing', 'trace')), []);
    await repo.close();
  });

  test('s3: the key ends in .trace; a pprof profile\'s in .pb.gz', () => {
    assert.match(s3Key('pprof/', traceProfile()), /^pprof\/billing\/trace\/2026\/11\/25\/20261125T085800\.123Z_10\.0\.0\.7_6060_[0-9a-f]{12}\.trace$/);
    assert.match(s3Key('pprof/', traceProfile({ type: 'heap', sampleCount: 3 })), /_[0-9a-f]{12}\.pb\.gz$/);
  });
});

describe('Pyroscope skips traces', () => {
  test('prepare skips a trace without reading it, and the repository says so once, across a reload', async () => {
    const fake = await startPyroscopeFake();
    const { logger, records: lines } = captureLogger();
    try {
      const repo = await createPyroscopeRepository('pyro-eu', pyroscopeConfig(fake.url), { logger });
      // bytes that are no pprof at all: a decode would throw, and the queue would quarantine it
      for (let i = 0; i < 3; i++) {
        const prepared = await repo.prepare(traceProfile({ time: TIME + i }));
        assert.equal(prepared.status, 'skipped');
        assert.match(prepared.status === 'skipped' ? prepared.reason : '', /Go execution trace: Pyroscope holds pprof profiles only/);
      }
      assert.equal((await repo.send(traceProfile(), AbortSignal.timeout(5000))).status, 'skipped');
      assert.equal(repo.deltas.size, 0, 'no baseline: nothing was decoded');
      const reloaded = await createPyroscopeRepository('pyro-eu', pyroscopeConfig(fake.url, { tenant: 'other' }), { logger, previous: repo });
      assert.equal((await reloaded.prepare(traceProfile())).status, 'skipped');
      const said = lines.filter((l) => /execution trace/i.test(String(l['msg'])));
      assert.equal(said.length, 1, JSON.stringify(said));
      assert.equal(said[0]?.['repository'], 'pyro-eu');
      assert.match(String(said[0]?.['msg']), /profefe, directory and s3/);
      assert.equal(fake.requests(), 0);
      await repo.close();
      await reloaded.close();
    } finally {
      await fake.close();
    }
  });
});

test('the status page hands out the last trace as a .trace file', async () => {
  const held = traceProfile();
  const server = await startStatusServer(
    '127.0.0.1:0',
    statusRoutes(staticStatusSource({ lastProfile: (id, type) => (id === held.targetId && type === held.type ? held : undefined) })),
    silentLogger(),
  );
  try {
    const res = await request(`http://${server.address}/${lastProfileLink('abc123', 'trace')}`);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'application/octet-stream');
    assert.equal(res.headers['content-disposition'], 'attachment; filename="billing_trace_20261125T085800Z_10.0.0.7_6060.trace"');
    assert.deepEqual(Buffer.from(await res.body.arrayBuffer()), TRACE_BYTES);
  } finally {
    await server.close();
  }
});

describe('OTLP and Parca skip traces', () => {
  for (const [block, holds] of [
    ['otlp: {name: otel, endpoint: "http://127.0.0.1:9"}', /Go execution trace: OTLP profiles hold pprof-style samples only/],
    ['parca: {name: otel, url: "127.0.0.1:9", insecure: true}', /Go execution trace: Parca holds pprof profiles only/],
  ] as const) {
    test(`${block.slice(0, block.indexOf(':'))}: prepare and send skip a trace without reading or sending it, and say so once`, async () => {
      const { config } = parseConfig(`repositories:\n  - ${block}\n`, 'traces.yaml', { baseDir: '.', env: {} });
      const { logger, records: lines } = captureLogger();
      const repo = await createRepository(config.repositories[0]!, { logger });
      try {
        for (let i = 0; i < 3; i++) {
          // bytes that are no pprof at all; the peer's port is closed, so a send would be retryable, not skipped
          // Parca sends as scraped: it has no transform stage
          const prepared = repo.prepare ? [await repo.prepare(traceProfile({ time: TIME + i }))] : [];
          const sent = await repo.send(traceProfile({ time: TIME + i }), AbortSignal.timeout(5000));
          for (const result of [...prepared, sent]) {
            assert.equal(result.status, 'skipped');
            assert.match(result.status === 'skipped' ? result.reason : '', holds);
          }
        }
        const said = lines.filter((l) => /execution trace/i.test(String(l['msg'])));
        assert.equal(said.length, 1, JSON.stringify(said));
        assert.equal(said[0]?.['repository'], 'otel');
      } finally {
        await repo.close();
      }
    });
  }
});
