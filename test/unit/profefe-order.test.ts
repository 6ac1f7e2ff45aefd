/**
 * One service's profiles reach profefe in the order of the time profefe files
 * them under: its label index joins per-label lists by profile ID, IDs grow
 * with arrival, so a profile that arrives after a later-dated one of its
 * service is missed by queries with labels (the fake's find() does what
 * profefe's badger storage does).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import type { ScrapedProfile } from '../../src/profiles/profile.js';
import { createProfefeRepository, profefeIndexTime } from '../../src/repositories/profefe.js';
import { ScrapesInFlight, SendOrder } from '../../src/delivery/order.js';
import type { OrderedItem } from '../../src/delivery/order.js';
import { openSpool } from '../../src/delivery/spool.js';
import type { Spool } from '../../src/delivery/spool.js';
import { createMetrics } from '../../src/metrics.js';
import { silentLogger } from '../../src/log.js';
import { startProfefeFake } from '../helpers/profefe-fake.js';
import type { ProfefeFake } from '../helpers/profefe-fake.js';
import { settings, tempDir } from '../helpers/delivery.js';
import { fuzzParameters } from '../helpers/fuzz.js';
import { fixtureProfile, scrapedProfile } from '../helpers/profiles.js';
import { waitUntil } from '../helpers/wait.js';

const heap = fixtureProfile('heap');
const T0 = Date.UTC(2026, 11, 2, 6, 0, 0);

/** A heap profile of `service` whose body says `timeMs`, as a target serves it. */
function profile(service: string, type: string, timeMs: number, instance = '10.0.0.7:6060'): ScrapedProfile {
  heap.timeNanos = BigInt(timeMs) * 1_000_000n;
  return scrapedProfile({
    targetId: `${service}/${instance}`,
    service,
    type,
    labels: { instance, team: 'core' },
    time: timeMs,
    bodyTime: timeMs,
    sampleCount: heap.sample.length,
    url: `http://${instance}/debug/pprof/${type}`,
    data: gzipSync(heap.encode()),
  });
}

async function profefeSpool(
  fake: ProfefeFake,
  scrapes: ScrapesInFlight,
  parallelism = 32,
  stateDir?: string,
): Promise<{ spool: Spool; enqueue: (p: ScrapedProfile) => Promise<void>; cleanup: () => Promise<void> }> {
  const { dir, cleanup } = stateDir === undefined ? await tempDir('pprof-order-') : { dir: stateDir, cleanup: async () => undefined };
  const spool = await openSpool(dir, { logger: silentLogger(), metrics: createMetrics({ defaultMetrics: false }), scrapes });
  const repo = await createProfefeRepository('profefe', { url: fake.url, headers: {} } as never);
  const handle = await spool.attach(repo, settings({ parallelism, policy: { initialMs: 20, maxMs: 50 } }));
  spool.activate(new Map([['profefe', handle]]));
  return {
    spool,
    enqueue: (p) => handle.enqueue(p),
    cleanup: async () => {
      await handle.close(0);
      await spool.close(0);
      await repo.close();
      await cleanup();
    },
  };
}

describe('profefe: arrival order', () => {
  let fake: ProfefeFake;
  before(async () => {
    fake = await startProfefeFake();
  });
  after(async () => {
    await fake.close();
  });

  test('the fake finds what profefe finds: a label query misses a profile that arrived out of order', async () => {
    const other = await startProfefeFake();
    try {
      const repo = await createProfefeRepository('profefe', { url: other.url, headers: {} } as never);
      // a heap taken during a CPU window arrives first, then the CPU profile dated at the window's start
      for (const p of [profile('billing', 'heap', T0 + 10_000), profile('billing', 'cpu', T0), profile('billing', 'heap', T0 + 20_000)]) {
        assert.deepEqual(await repo.send(p, AbortSignal.timeout(5000)), { status: 'ok' });
      }
      await repo.close();
      const window = { service: 'billing', from: T0 - 1000, to: T0 + 60_000 };
      assert.equal(other.find(window).length, 3, 'by service alone: one index, nothing to join');
      assert.equal(other.find({ ...window, type: 'heap' }).length, 2, 'by type alone: one index');
      // the heap index [0, 2] joined with the label index [1, 0, 2]: the walk steps past 0
      assert.deepEqual(
        other.find({ ...window, type: 'heap', labels: { team: 'core' } }).map((r) => r.id),
        [2],
        'by type and label: the heap that arrived first is missed',
      );
      assert.equal(other.outOfOrder().length, 1);
    } finally {
      await other.close();
    }
  });

  test('profefe files a profile by its body time, else created_at in whole seconds; a trace only by created_at', () => {
    assert.equal(profefeIndexTime({ type: 'heap', time: T0 + 1234, bodyTime: T0 + 1234 }), T0 + 1234);
    assert.equal(profefeIndexTime({ type: 'heap', time: T0 + 1234 }), T0 + 1000);
    // a far-off body time is kept by profefe, whatever created_at says
    assert.equal(profefeIndexTime({ type: 'heap', time: T0 + 1234, bodyTime: 86_400_000 }), 86_400_000);
    assert.equal(profefeIndexTime({ type: 'trace', time: T0 + 1234, bodyTime: T0 + 1 }), T0 + 1000);
  });

  test('a profile waits while an earlier scrape of its service runs, then goes after that one', async () => {
    const scrapes = new ScrapesInFlight();
    const { enqueue, cleanup } = await profefeSpool(fake, scrapes);
    const start = fake.received.length;
    try {
      const cpuScrape = scrapes.begin('billing');
      // the profiles below are queued after the scrape began: a later millisecond
      const begunAt = Date.now();
      await waitUntil('a millisecond past the scrape start', () => Date.now() > begunAt);
      // heap profiles of billing taken while the CPU window is open, and one of another service
      await enqueue(profile('billing', 'heap', T0 + 1_000));
      await enqueue(profile('billing', 'goroutine', T0 + 2_000));
      await enqueue(profile('search', 'heap', T0 + 1_500));
      await waitUntil('the other service sent', () => fake.received.length > start);
      // a sleep on purpose: billing must not go within it
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(
        fake.received.slice(start).map((r) => r.service),
        ['search'],
        'billing waits for its CPU scrape; search does not',
      );
      await enqueue(profile('billing', 'cpu', T0));
      cpuScrape();
      await waitUntil('every profile sent', () => fake.received.length >= start + 4);
      assert.deepEqual(
        fake.received
          .slice(start)
          .filter((r) => r.service === 'billing')
          .map((r) => r.type),
        ['cpu', 'heap', 'goroutine'],
      );
      assert.deepEqual(fake.outOfOrder(), []);
    } finally {
      await cleanup();
    }
  });

  test('after an outage the queue drains each service in time order, one send per service at a time', async () => {
    const drained = await startProfefeFake();
    const scrapes = new ScrapesInFlight();
    const { enqueue, cleanup } = await profefeSpool(drained, scrapes);
    try {
      let refused = 0;
      drained.setFailure(() => {
        refused++;
        return { status: 503, body: 'storage unavailable' };
      });
      // scraped in the order a fleet finishes them: each minute's CPU profile (dated at its start) after that minute's others
      const services = ['billing', 'search', 'auth'];
      let n = 0;
      for (let minute = 0; minute < 5; minute++) {
        const t = T0 + minute * 60_000;
        for (const s of services) {
          for (const [i, type] of ['heap', 'goroutine', 'block', 'mutex'].entries()) {
            await enqueue(profile(s, type, t + 1000 + i * 7, `10.0.0.${(n++ % 3) + 1}:6060`));
          }
        }
        for (const s of services) await enqueue(profile(s, 'cpu', t));
      }
      await waitUntil('sends refused, retried, refused again', () => refused >= 3);
      drained.setFailure(undefined);
      await drained.waitForProfiles(75, 30_000);
      assert.deepEqual(drained.outOfOrder(), []);
      for (const s of services) {
        const all = drained.find({ service: s, from: T0, to: T0 + 600_000 });
        assert.equal(all.length, 25);
        assert.equal(drained.find({ service: s, from: T0, to: T0 + 600_000, labels: { team: 'core' } }).length, 25, `${s}: a label query finds every profile`);
        assert.equal(drained.find({ service: s, type: 'heap', from: T0, to: T0 + 600_000, labels: { team: 'core' } }).length, 5, `${s}: a query by type and label finds every heap`);
        assert.equal(drained.find({ service: s, type: 'heap', from: T0, to: T0 + 600_000, labels: { instance: '10.0.0.1:6060' } }).length, all.filter((r) => r.type === 'heap' && r.labels.some(([k, v]) => k === 'instance' && v === '10.0.0.1:6060')).length);
      }
    } finally {
      await cleanup();
      await drained.close();
    }
  });
});

describe('profefe: arrival order after a restart', () => {
  test('a backlog read from disk goes each service earliest first, by the times its records hold', async () => {
    const down = await startProfefeFake();
    const up = await startProfefeFake();
    const { dir, cleanup } = await tempDir('pprof-order-restart-');
    try {
      down.setFailure(() => ({ status: 503, body: 'storage unavailable' }));
      const first = await profefeSpool(down, new ScrapesInFlight(), 32, dir);
      // a CPU profile of each minute queued after that minute's heap, as a fleet finishes them
      for (let minute = 0; minute < 4; minute++) {
        const t = T0 + minute * 60_000;
        for (const s of ['billing', 'search']) await first.enqueue(profile(s, 'heap', t + 1000));
        for (const s of ['billing', 'search']) await first.enqueue(profile(s, 'cpu', t));
      }
      await first.cleanup();
      const second = await profefeSpool(up, new ScrapesInFlight(), 32, dir);
      try {
        await up.waitForProfiles(16, 30_000);
        assert.deepEqual(up.outOfOrder(), []);
        for (const s of ['billing', 'search']) assert.equal(up.find({ service: s, type: 'heap', from: T0, to: T0 + 600_000, labels: { team: 'core' } }).length, 4);
      } finally {
        await second.cleanup();
      }
    } finally {
      await down.close();
      await up.close();
      await cleanup();
    }
  });
});

describe('SendOrder', () => {
  interface Item extends OrderedItem {
    readonly id: number;
  }

  test('each key sends earliest first and one at a time, whatever the arrival order and the failures', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ key: fc.constantFrom('a', 'b', 'c'), time: fc.integer({ min: 0, max: 20 }) }), { minLength: 1, maxLength: 40 }),
        fc.array(fc.boolean(), { maxLength: 80 }),
        fc.integer({ min: 1, max: 4 }),
        (specs, failures, parallel) => {
          const order = new SendOrder<Item>();
          const items: Item[] = specs.map((s, i) => ({ place: s, seq: i, id: i }));
          for (const it of items) order.add(it);
          const sent = new Map<string, Item[]>();
          const inFlight: Item[] = [];
          let f = 0;
          for (let rounds = 0; rounds < 1000 && (inFlight.length > 0 || order.keys > 0); rounds++) {
            for (const head of order.heads()) {
              if (inFlight.length >= parallel) break;
              assert.ok(!inFlight.some((x) => x.place?.key === head.place?.key), 'two sends of one key at once');
              order.take(head);
              inFlight.push(head);
            }
            const done = inFlight.shift();
            if (!done) continue;
            if (failures[f++ % Math.max(1, failures.length)] === true && rounds < 200) order.add(done);
            else sent.set(done.place!.key, [...(sent.get(done.place!.key) ?? []), done]);
            order.done(done.place!.key);
          }
          assert.equal([...sent.values()].reduce((n, l) => n + l.length, 0), items.length);
          for (const list of sent.values()) {
            for (let i = 1; i < list.length; i++) {
              const [a, b] = [list[i - 1]!, list[i]!];
              assert.ok(a.place!.time < b.place!.time || (a.place!.time === b.place!.time && a.seq < b.seq), 'out of order');
            }
          }
        },
      ),
      fuzzParameters(300),
    );
  });

  test('a scrape in flight holds only its service, and only profiles queued after it started', () => {
    const scrapes = new ScrapesInFlight();
    const woken: string[] = [];
    scrapes.onEnd((s) => woken.push(s));
    const end = scrapes.begin('billing', 1000);
    assert.equal(scrapes.runsBefore('billing', 1001), true);
    assert.equal(scrapes.runsBefore('billing', 1000), false);
    assert.equal(scrapes.runsBefore('search', 5000), false);
    end();
    end();
    assert.equal(scrapes.runsBefore('billing', 1001), false);
    assert.deepEqual(woken, ['billing']);
  });
});
