import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseConfig } from '../../src/config/index.js';
import type { ProfefeConfig, DirectoryConfig } from '../../src/config/index.js';
import type { ScrapedProfile } from '../../src/profiles/profile.js';
import { createDirectoryRepository, createProfefeRepository, parseRetryAfter, profefeQuery, resultOfStatus } from '../../src/repositories/index.js';
import { startProfefeFake } from '../helpers/profefe-fake.js';
import type { ProfefeFake } from '../helpers/profefe-fake.js';
import { scrapedProfile } from '../helpers/profiles.js';

/** A profile of `type` whose bytes are the fixture of that type (heap for a custom type). */
async function profile(type: string, overrides: Partial<ScrapedProfile> = {}): Promise<ScrapedProfile> {
  return scrapedProfile({ type, labels: { instance: '10.0.0.7:6060', provider: 'static', team: 'pay,ments=x y+z%' }, time: Date.UTC(2026, 10, 25, 8, 58, 0, 123), sampleCount: 3, ...overrides });
}

function repoConfig<T>(yaml: string, kind: 'profefe' | 'directory'): T {
  const c = parseConfig(`repositories:\n  - ${yaml}\n`, 't.yaml', { baseDir: '.', env: {} }).config;
  return c.repositories[0]?.[kind] as T;
}

describe('profefe repository', () => {
  let fake: ProfefeFake;
  before(async () => {
    fake = await startProfefeFake();
  });
  after(async () => {
    await fake.close();
  });

  test('sends service, type and escaped labels that profefe parses back exactly', async () => {
    const repo = await createProfefeRepository('profefe', repoConfig<ProfefeConfig>(`profefe: {url: "${fake.url}/"}`, 'profefe'));
    const p = await profile('heap');
    assert.deepEqual(await repo.send(p, AbortSignal.timeout(5000)), { status: 'ok' });
    const got = fake.received.at(-1);
    assert.equal(got?.service, 'billing');
    assert.equal(got?.type, 'heap');
    assert.deepEqual(got?.labels, [['instance', '10.0.0.7:6060'], ['provider', 'static'], ['team', 'pay,ments=x y+z%']]);
    assert.deepEqual(got?.body, p.data, 'the profile goes as scraped');
    await repo.close();
  });

  test('allocs and empty profiles are not sent; custom types go as other', async () => {
    const repo = await createProfefeRepository('profefe', repoConfig<ProfefeConfig>(`profefe: {url: "${fake.url}"}`, 'profefe'));
    const before = fake.received.length;
    assert.equal((await repo.send(await profile('allocs'), AbortSignal.timeout(5000))).status, 'skipped');
    assert.equal((await repo.send(await profile('heap', { sampleCount: 0 }), AbortSignal.timeout(5000))).status, 'skipped');
    assert.equal(fake.received.length, before);
    assert.deepEqual(await repo.send(await profile('fgprof'), AbortSignal.timeout(5000)), { status: 'ok' });
    assert.equal(fake.received.at(-1)?.type, 'other');
    await repo.close();
  });

  test('a 400 is permanent, a 503 with Retry-After is retryable, a dead server is retryable', async () => {
    const repo = await createProfefeRepository('profefe', repoConfig<ProfefeConfig>(`profefe: {url: "${fake.url}"}`, 'profefe'));
    fake.setFailure(() => ({ status: 400, body: '{"code":400,"error":"bad request: nope"}' }));
    assert.deepEqual(await repo.send(await profile('heap'), AbortSignal.timeout(5000)), { status: 'permanent', error: 'HTTP 400: {"code":400,"error":"bad request: nope"}' });
    fake.setFailure(() => ({ status: 503, body: 'later', headers: { 'retry-after': '7' } }));
    assert.deepEqual(await repo.send(await profile('heap'), AbortSignal.timeout(5000)), { status: 'retryable', error: 'HTTP 503: later', retryAfterMs: 7000 });
    fake.setFailure(undefined);
    await repo.close();
    const dead = await createProfefeRepository('dead', repoConfig<ProfefeConfig>('profefe: {url: "http://127.0.0.1:9"}', 'profefe'));
    const r = await dead.send(await profile('heap'), AbortSignal.timeout(5000));
    assert.equal(r.status, 'retryable');
    assert.match(r.status === 'retryable' ? r.error : '', /ECONNREFUSED/);
    await dead.close();
  });

  test('the labels query is escaped twice, as profefe expects', () => {
    assert.equal(profefeQuery('a b', 'heap', { k: 'x=y,z' }), 'service=a%20b&type=heap&labels=k%3Dx%253Dy%252Cz');
  });
});

describe('status rules', () => {
  test('408, 429 and 5xx retry; other 4xx are permanent; Retry-After as seconds or a date', () => {
    for (const s of [408, 429, 500, 502, 503]) assert.equal(resultOfStatus(s, '', undefined).status, 'retryable');
    for (const s of [400, 401, 403, 404, 413]) assert.equal(resultOfStatus(s, '', undefined).status, 'permanent');
    assert.equal(resultOfStatus(204, '', undefined).status, 'ok');
    const now = Date.UTC(2026, 0, 1);
    assert.equal(parseRetryAfter('120', now), 120_000);
    assert.equal(parseRetryAfter(new Date(now + 30_000).toUTCString(), now), 30_000);
    assert.equal(parseRetryAfter('soon', now), undefined);
  });
});

describe('directory repository', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-dir-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('writes {service}/{type}/{time}_{instance}.pb.gz and a .json sidecar, nothing half-written', async () => {
    const repo = createDirectoryRepository('directory', repoConfig<DirectoryConfig>(`directory: {path: "${dir}/a"}`, 'directory'));
    const p = await profile('heap', { service: '../evil/svc' });
    assert.deepEqual(await repo.send(p, AbortSignal.timeout(5000)), { status: 'ok' });
    const folder = join(dir, 'a', '.._evil_svc'.replace(/^\.\./, '__'), 'heap');
    const files = (await readdir(folder)).sort();
    assert.deepEqual(files, ['20261125T085800.123Z_10.0.0.7_6060.json', '20261125T085800.123Z_10.0.0.7_6060.pb.gz']);
    assert.deepEqual(await readFile(join(folder, files[1]!)), p.data);
    const sidecar = JSON.parse(await readFile(join(folder, files[0]!), 'utf8'));
    assert.deepEqual(sidecar.labels, p.labels);
    assert.equal(sidecar.time, '2026-11-25T08:58:00.123Z');
    await repo.close();
  });

  test('retention removes the oldest files first, by age and by total size', async () => {
    const root = join(dir, 'r');
    const repo = createDirectoryRepository('directory', repoConfig<DirectoryConfig>(`directory: {path: "${root}", retention: {max_age: 1h, max_size: 10KiB}}`, 'directory'));
    const now = Date.now();
    for (let i = 0; i < 6; i++) assert.equal((await repo.send(await profile('heap', { time: now + i * 1000 }), AbortSignal.timeout(5000))).status, 'ok');
    const folder = join(root, 'billing', 'heap');
    const names = (await readdir(folder)).filter((n) => n.endsWith('.pb.gz')).sort();
    // age the first one past max_age, and give the files increasing mtimes
    for (let i = 0; i < names.length; i++) {
      const t = i === 0 ? new Date(now - 2 * 3_600_000) : new Date(now - (names.length - i) * 1000);
      await utimes(join(folder, names[i]!), t, t);
      await utimes(join(folder, names[i]!.replace('.pb.gz', '.json')), t, t);
    }
    await writeFile(join(folder, '.inflight.tmp'), 'x');
    const sizeOf = async (): Promise<number> => {
      let total = 0;
      for (const n of await readdir(folder)) if (!n.startsWith('.')) total += (await stat(join(folder, n))).size;
      return total;
    };
    await repo.sweep();
    const left = (await readdir(folder)).sort();
    assert.ok(!left.includes(names[0]!), 'the file past max_age is gone');
    assert.ok(left.includes(names.at(-1)!), 'the newest stays');
    assert.ok(left.includes('.inflight.tmp'), 'files being written are left alone');
    assert.ok((await sizeOf()) <= 10 * 1024);
    await repo.close();
  });

  test('a write that fails is retryable and names the file', async () => {
    const blocker = join(dir, 'blocker');
    await writeFile(blocker, 'a file where a folder should be');
    const repo = createDirectoryRepository('directory', repoConfig<DirectoryConfig>(`directory: {path: "${blocker}"}`, 'directory'));
    const r = await repo.send(await profile('heap'), AbortSignal.timeout(5000));
    assert.equal(r.status, 'retryable');
    assert.match(r.status === 'retryable' ? r.error : '', /^writing .*blocker\/billing\/heap\/.*\.pb\.gz: (ENOTDIR|EEXIST)/);
    await repo.close();
  });
});
