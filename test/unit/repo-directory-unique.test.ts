/**
 * The directory repository never overwrites: profiles of one target and type
 * with the same time (a target serving the same profile twice, a profile
 * with no time of its own scraped in the same millisecond, concurrent sends
 * after an outage) each keep a file and a sidecar of their own.
 */
import assert from 'node:assert/strict';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { ScrapedProfile } from '../../src/profiles/profile.js';
import { createDirectoryRepository } from '../../src/repositories/directory.js';
import { tempDir } from '../helpers/delivery.js';
import { fixture, scrapedProfile } from '../helpers/profiles.js';

const heap = fixture('heap');
const TIME = Date.UTC(2026, 10, 25, 8, 58, 0, 123);
const BASE = '20261125T085800.123Z_10.0.0.7_6060';

function profile(seq: number, data: Buffer = heap): ScrapedProfile {
  return scrapedProfile({ targetId: 't1', labels: { instance: '10.0.0.7:6060', seq: String(seq) }, time: TIME, sampleCount: 8, data });
}

let root: string;
let cleanup: () => Promise<void>;
before(async () => {
  ({ dir: root, cleanup } = await tempDir('pprof-dir-unique-'));
});
after(async () => {
  await cleanup();
});

/** Each profile file with its sidecar's `seq` label. */
async function stored(folder: string): Promise<Array<{ name: string; seq: string; data: Buffer }>> {
  const names = (await readdir(folder)).filter((n) => n.endsWith('.pb.gz')).sort();
  return Promise.all(
    names.map(async (name) => {
      const side = JSON.parse(await readFile(join(folder, name.replace(/\.pb\.gz$/, '.json')), 'utf8')) as { labels: Record<string, string> };
      return { name, seq: side.labels['seq'] ?? '', data: await readFile(join(folder, name)) };
    }),
  );
}

void test('the same profile twice at the same time: two files, the second with a counter suffix', async () => {
  const repo = createDirectoryRepository('directory', { path: join(root, 'twice') } as never);
  assert.deepEqual(await repo.send(profile(1), AbortSignal.timeout(5000)), { status: 'ok' });
  assert.deepEqual(await repo.send(profile(2), AbortSignal.timeout(5000)), { status: 'ok' });
  const folder = join(root, 'twice', 'billing', 'heap');
  assert.deepEqual((await readdir(folder)).sort(), [`${BASE}.json`, `${BASE}.pb.gz`, `${BASE}_2.json`, `${BASE}_2.pb.gz`]);
  assert.deepEqual(
    (await stored(folder)).map((f) => [f.name, f.seq]),
    [
      [`${BASE}.pb.gz`, '1'],
      [`${BASE}_2.pb.gz`, '2'],
    ],
  );
  await repo.close();
});

void test('concurrent sends of one time each keep their own file and sidecar', async () => {
  const repo = createDirectoryRepository('directory', { path: join(root, 'burst') } as never);
  // distinct bytes per profile, so a file that another send replaced would show
  const results = await Promise.all(Array.from({ length: 24 }, (_, i) => repo.send(profile(i, Buffer.concat([heap, Buffer.from([i])])), AbortSignal.timeout(5000))));
  assert.ok(results.every((r) => r.status === 'ok'), JSON.stringify(results));
  const files = await stored(join(root, 'burst', 'billing', 'heap'));
  assert.equal(files.length, 24);
  for (const f of files) assert.equal(f.data.at(-1), Number(f.seq), `${f.name} holds profile ${f.data.at(-1)} but its sidecar says ${f.seq}`);
  assert.deepEqual(new Set(files.map((f) => f.seq)).size, 24);
  await repo.close();
});

void test("a file already at the name, or a sidecar alone, is left as it is", async () => {
  const folder = join(root, 'taken', 'billing', 'heap');
  const repo = createDirectoryRepository('directory', { path: join(root, 'taken') } as never);
  assert.deepEqual(await repo.send(profile(0), AbortSignal.timeout(5000)), { status: 'ok' });
  await writeFile(join(folder, `${BASE}_2.json`), 'an operator note');
  assert.deepEqual(await repo.send(profile(1), AbortSignal.timeout(5000)), { status: 'ok' });
  assert.equal(await readFile(join(folder, `${BASE}_2.json`), 'utf8'), 'an operator note');
  assert.deepEqual(
    (await stored(folder)).filter((f) => f.name !== `${BASE}_2.pb.gz`).map((f) => [f.name, f.seq]),
    [
      [`${BASE}.pb.gz`, '0'],
      [`${BASE}_3.pb.gz`, '1'],
    ],
  );
  assert.deepEqual((await readdir(folder)).filter((n) => n.startsWith('.')), [], 'no temp file left');
  await repo.close();
});

void test('whoever sees a profile file finds its sidecar: the sidecar takes its name first', async () => {
  const repo = createDirectoryRepository('directory', { path: join(root, 'watched') } as never);
  const folder = join(root, 'watched', 'billing', 'heap');
  const missing: string[] = [];
  let sending = true;
  const watch = (async () => {
    while (sending) {
      const names = await readdir(folder).catch(() => [] as string[]);
      for (const n of names.filter((x) => x.endsWith('.pb.gz'))) {
        // a sidecar once there stays: it was linked before the profile
        const side = join(folder, n.replace(/\.pb\.gz$/, '.json'));
        if (!(await readFile(side).then(() => true, () => false))) missing.push(n);
      }
      await new Promise((r) => setImmediate(r));
    }
  })();
  for (let round = 0; round < 10; round++) {
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => repo.send({ ...profile(round * 8 + i), time: TIME + round }, AbortSignal.timeout(5000))));
    assert.ok(results.every((r) => r.status === 'ok'));
  }
  sending = false;
  await watch;
  assert.deepEqual(missing, []);
  assert.equal((await readdir(folder)).filter((n) => n.endsWith('.pb.gz')).length, 80);
  await repo.close();
});
