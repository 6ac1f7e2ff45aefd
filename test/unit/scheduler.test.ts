import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { realClock } from '../../src/clock.js';
import { Scheduler } from '../../src/scrape/scheduler.js';
import type { ScrapeTask } from '../../src/scrape/scheduler.js';
import type { Target, TargetProfile } from '../../src/targets/index.js';
import { FakeClock, settle } from '../helpers/fake-clock.js';

/** setTimeout's largest delay; a longer one fires after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const WEEK = 7 * 86_400_000;

/** A fake clock that remembers every delay it was armed with. */
class RecordingClock extends FakeClock {
  readonly delays: number[] = [];
  override setTimeout(fn: () => void, ms: number): unknown {
    this.delays.push(ms);
    return super.setTimeout(fn, ms);
  }
}

function target(id: string, intervalMs: number, profiles: Partial<TargetProfile>[] = [{ type: 'heap' }]): Target {
  return {
    id,
    provider: 'static',
    source: 0,
    service: 'svc',
    address: `${id}:6060`,
    scheme: 'http',
    labels: {},
    timing: { kind: 'interval', ms: intervalMs },
    profiles: profiles.map((p) => ({ type: p.type ?? 'heap', url: `http://${id}:6060/${p.type ?? 'heap'}`, seconds: p.seconds, delta: false })),
  };
}

/** A run() whose scrapes finish only when the test says so. */
function controlledRun() {
  const pending: { task: ScrapeTask; finish: () => void }[] = [];
  const started: { key: string; at: number }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  return {
    pending,
    started,
    get maxInFlight() {
      return maxInFlight;
    },
    get inFlight() {
      return inFlight;
    },
    run: (clock: FakeClock) => (task: ScrapeTask) =>
      new Promise<void>((resolve) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        started.push({ key: task.key, at: clock.now() });
        pending.push({
          task,
          finish: () => {
            inFlight--;
            resolve();
          },
        });
      }),
    finishAll() {
      for (const p of pending.splice(0)) p.finish();
    },
  };
}

describe('scheduler', () => {
  test('offsets are stable and spread evenly over the interval', () => {
    const clock = new FakeClock();
    const make = (): Scheduler => new Scheduler({ concurrency: 8, clock }, { run: async () => undefined });
    const targets = Array.from({ length: 2000 }, (_, i) => target(`t${i}`, 60_000));
    const a = make();
    a.update(targets);
    const b = make();
    b.update([...targets].reverse());
    const buckets = new Array<number>(10).fill(0);
    for (const t of targets) {
      const tick = a.nextTickOf(`${t.id}/heap`);
      assert.ok(tick !== undefined);
      assert.equal(b.nextTickOf(`${t.id}/heap`), tick, 'same target, same offset');
      const delay = tick - clock.now();
      assert.ok(delay > 0 && delay <= 60_000);
      buckets[Math.floor((delay - 1) / 6000)]!++;
    }
    // 200 expected per bucket
    for (const n of buckets) assert.ok(n > 140 && n < 260, `uneven spread: ${buckets.join(',')}`);
    a.stop();
    b.stop();
  });

  test('the concurrency limit is never exceeded, and waiting ticks run as slots free', async () => {
    const clock = new FakeClock();
    const r = controlledRun();
    const s = new Scheduler({ concurrency: 3, clock }, { run: r.run(clock) });
    s.update(Array.from({ length: 20 }, (_, i) => target(`c${i}`, 10_000)));
    await clock.advance(10_000);
    assert.equal(r.started.length, 3);
    assert.equal(r.maxInFlight, 3);
    while (r.started.length < 20) {
      r.pending.shift()?.finish();
      await settle();
      assert.ok(r.inFlight <= 3);
    }
    assert.equal(r.maxInFlight, 3);
    r.finishAll();
    s.stop();
  });

  test('a tick whose previous scrape still runs is skipped, not queued', async () => {
    const clock = new FakeClock();
    const r = controlledRun();
    const skipped: number[] = [];
    const s = new Scheduler({ concurrency: 4, clock }, { run: r.run(clock), onSkipped: (_t, planned) => skipped.push(planned) });
    s.update([target('slow', 10_000)]);
    await clock.advance(10_000);
    assert.equal(r.started.length, 1);
    await clock.advance(25_000); // two more ticks come while the first scrape runs
    assert.equal(skipped.length, 2);
    assert.equal(r.started.length, 1);
    r.finishAll();
    await settle();
    assert.equal(r.started.length, 1, 'nothing queued behind the slow scrape');
    await clock.advance(10_000);
    assert.equal(r.started.length, 2, 'the next tick after it finished runs');
    r.finishAll();
    s.stop();
  });

  test('never two CPU-style profiles against one target at once', async () => {
    const clock = new FakeClock();
    const r = controlledRun();
    const s = new Scheduler({ concurrency: 10, clock }, { run: r.run(clock) });
    // two CPU-style types on one target, a plain type, and another target's CPU
    s.update([
      target('a', 1_000, [{ type: 'cpu', seconds: 1 }, { type: 'fgprof', seconds: 1 }, { type: 'heap' }]),
      target('b', 1_000, [{ type: 'cpu', seconds: 1 }]),
    ]);
    await clock.advance(1_000);
    const keys = (): string[] => r.pending.map((p) => p.task.key).sort();
    const running = keys();
    assert.ok(running.includes('a/heap'));
    assert.ok(running.includes('b/cpu'));
    assert.equal(running.filter((k) => k === 'a/cpu' || k === 'a/fgprof').length, 1, `two CPU profiles of target a at once: ${running.join(' ')}`);
    // when it finishes, the other one of target a starts
    const first = r.pending.find((p) => p.task.key === 'a/cpu' || p.task.key === 'a/fgprof');
    first?.finish();
    r.pending.splice(r.pending.indexOf(first!), 1);
    await settle();
    assert.equal(r.pending.filter((p) => p.task.key === 'a/cpu' || p.task.key === 'a/fgprof').length, 1);
    r.finishAll();
    s.stop();
  });

  test('a CPU-style scrape waiting out its window holds no slot: with concurrency 1 another target is still scraped', async () => {
    const clock = new FakeClock();
    let endWindow!: () => void;
    const window = new Promise<void>((resolve) => (endWindow = resolve));
    let cpuAsked = false;
    let cpuDone = false;
    const heapAt: number[] = [];
    const s = new Scheduler(
      { concurrency: 1, clock },
      {
        run: async (task, _planned, signal, slot) => {
          if (task.profile.seconds === undefined) {
            heapAt.push(clock.now());
            return;
          }
          await window;
          assert.ok(slot, 'a CPU-style run gets a slot to take when its answer starts');
          cpuAsked = true;
          const release = await slot(signal);
          release();
          cpuDone = true;
        },
      },
    );
    s.update([target('a', 60_000, [{ type: 'cpu', seconds: 55 }]), target('b', 10_000)]);
    await clock.advance(60_000);
    const heapBefore = heapAt.length;
    await clock.advance(50_000); // the CPU profile of target a is in its window all along
    assert.equal(cpuAsked, false);
    assert.ok(heapAt.length - heapBefore >= 4, `heap scrapes during the CPU window: ${heapAt.length - heapBefore}`);
    endWindow();
    await settle();
    assert.ok(cpuDone, 'the CPU scrape gets its slot when its answer starts');
    s.stop();
  });

  test('with concurrency 1 CPU windows overlap but no two bodies are read at once', async () => {
    const clock = new FakeClock();
    let endWindows!: () => void;
    const windows = new Promise<void>((resolve) => (endWindows = resolve));
    let waiting = 0;
    let maxWaiting = 0;
    let reading = 0;
    let maxReading = 0;
    const done: string[] = [];
    const readBody = async (): Promise<void> => {
      reading++;
      maxReading = Math.max(maxReading, reading);
      await settle(3);
      reading--;
    };
    const s = new Scheduler(
      { concurrency: 1, clock },
      {
        run: async (task, _planned, signal, slot) => {
          if (slot) {
            waiting++;
            maxWaiting = Math.max(maxWaiting, waiting);
            await windows;
            waiting--;
            const release = await slot(signal);
            try {
              await readBody();
            } finally {
              release();
            }
          } else {
            await readBody();
          }
          done.push(task.key);
        },
      },
    );
    s.update([
      target('a', 60_000, [{ type: 'cpu', seconds: 30 }, { type: 'heap' }]),
      target('b', 60_000, [{ type: 'cpu', seconds: 30 }, { type: 'heap' }]),
      target('c', 60_000, [{ type: 'cpu', seconds: 30 }]),
    ]);
    await clock.advance(60_000);
    assert.equal(maxWaiting, 3, 'all three CPU windows run at once');
    endWindows();
    await settle();
    assert.deepEqual([...done].sort(), ['a/cpu', 'a/heap', 'b/cpu', 'b/heap', 'c/cpu']);
    assert.equal(maxReading, 1, 'two bodies read at once under concurrency 1');
    s.stop();
  });

  test('an update keeps the schedule of targets that stay and stops removed ones', async () => {
    const clock = new FakeClock();
    const runs: { key: string; at: number }[] = [];
    const s = new Scheduler({ concurrency: 10, clock }, { run: async (task) => void runs.push({ key: task.key, at: clock.now() }) });
    const start = clock.now();
    s.update([target('keep', 15_000), target('gone', 15_000)]);
    await clock.advance(7_000);
    const before = s.nextTickOf('keep/heap');
    const change = s.update([target('keep', 15_000), target('new', 15_000)]);
    assert.deepEqual(change, { added: 1, removed: 1, changed: 0 });
    assert.equal(s.nextTickOf('keep/heap'), before);
    assert.equal(s.nextTickOf('gone/heap'), undefined);
    await clock.advance(60_000);
    const end = clock.now();
    const at = (k: string): number[] => runs.filter((r) => r.key === k).map((r) => r.at);
    // every tick of the kept loop, exactly one interval apart: none extra, none missed
    const keep = at('keep/heap');
    const expected = Math.floor((end - (keep[0] ?? 0)) / 15_000) + 1;
    assert.equal(keep.length, expected);
    for (let i = 1; i < keep.length; i++) assert.equal((keep[i] ?? 0) - (keep[i - 1] ?? 0), 15_000);
    assert.ok((keep[0] ?? 0) - start <= 15_000);
    assert.ok(at('gone/heap').every((t) => t <= start + 7_000), 'a removed loop runs no more');
    assert.ok(at('new/heap').length >= 4);
    s.stop();
  });

  test('a changed interval reschedules only that loop', async () => {
    const clock = new FakeClock();
    const s = new Scheduler({ concurrency: 10, clock }, { run: async () => undefined });
    s.update([target('x', 60_000), target('y', 60_000)]);
    const y = s.nextTickOf('y/heap');
    const change = s.update([target('x', 30_000), target('y', 60_000)]);
    assert.equal(change.changed, 1);
    assert.equal(s.nextTickOf('y/heap'), y);
    assert.ok((s.nextTickOf('x/heap') ?? Infinity) - clock.now() <= 30_000);
    s.stop();
  });

  test('a cron schedule ticks at its times, each target delayed by a stable offset within spread', async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1, 9, 59));
    const runs: { key: string; at: number }[] = [];
    const s = new Scheduler({ concurrency: 10, clock }, { run: async (task) => void runs.push({ key: task.key, at: clock.now() }) });
    const cron = (id: string): Target => ({ ...target(id, 1), timing: { kind: 'cron', schedule: '*/5 * * * *', spreadMs: 60_000 } });
    s.update(Array.from({ length: 50 }, (_, i) => cron(`k${i}`)));
    await clock.advance(12 * 60_000);
    const offsets = new Set<number>();
    for (let i = 0; i < 50; i++) {
      const at = runs.filter((r) => r.key === `k${i}/heap`).map((r) => r.at);
      assert.equal(at.length, 3, 'ticks at 10:00, 10:05 and 10:10');
      const offset = (at[0] ?? 0) - Date.UTC(2026, 0, 1, 10, 0);
      assert.ok(offset >= 0 && offset < 60_000, `offset ${offset}`);
      assert.equal((at[1] ?? 0) - (at[0] ?? 0), 5 * 60_000, 'the same offset every tick');
      assert.equal((at[2] ?? 0) - (at[1] ?? 0), 5 * 60_000);
      offsets.add(Math.floor(offset / 10_000));
    }
    assert.ok(offsets.size >= 5, 'targets spread over the window');
    s.stop();
  });

  test('drain waits for in-flight scrapes, then aborts what is left at the deadline', async () => {
    const clock = new FakeClock();
    let aborted = 0;
    let finished = 0;
    const s = new Scheduler(
      { concurrency: 10, clock },
      {
        run: (task, _planned, signal) =>
          new Promise<void>((resolve) => {
            if (task.key.startsWith('quick')) {
              setTimeout(() => {
                finished++;
                resolve();
              }, 20);
            }
            signal.addEventListener('abort', () => {
              aborted++;
              resolve();
            });
          }),
      },
    );
    s.update([target('quick', 1000), target('stuck', 1000)]);
    await clock.advance(1000);
    await s.drain(200);
    assert.equal(finished, 1);
    assert.equal(aborted, 1);
  });
});

describe('long waits', () => {
  test('a 52-week interval is waited out in timer-sized steps, ticking once per interval', async () => {
    const clock = new RecordingClock();
    const runs: number[] = [];
    const s = new Scheduler({ concurrency: 1, clock }, { run: async () => void runs.push(clock.now()) });
    s.update([target('yearly', 52 * WEEK)]);
    await clock.advance(2 * 52 * WEEK);
    assert.equal(runs.length, 2);
    assert.equal((runs[1] ?? 0) - (runs[0] ?? 0), 52 * WEEK);
    assert.ok(Math.max(...clock.delays) <= MAX_TIMER_MS, `a delay of ${Math.max(...clock.delays)} ms overflows setTimeout`);
    // about 15 steps per interval, and never a run of short timers
    assert.ok(clock.delays.length <= 2 * 16 + 2, `${clock.delays.length} timers armed`);
    assert.ok(clock.delays.filter((d) => d < 1000).length <= runs.length, `short timers: ${clock.delays.filter((d) => d < 1000).length}`);
    s.stop();
  });

  test('a cron tick years away is waited out the same way', async () => {
    const clock = new RecordingClock(Date.UTC(2026, 0, 1));
    const runs: number[] = [];
    const s = new Scheduler({ concurrency: 1, clock }, { run: async () => void runs.push(clock.now()) });
    s.update([{ ...target('leap', 1), timing: { kind: 'cron', schedule: '0 0 29 2 *', spreadMs: 0 } }]);
    await clock.advance(800 * 86_400_000);
    assert.deepEqual(runs, [Date.UTC(2028, 1, 29)]);
    assert.ok(Math.max(...clock.delays) <= MAX_TIMER_MS);
    assert.ok(clock.delays.length <= 40, `${clock.delays.length} timers armed`);
    s.stop();
  });

  test('on the real clock a 52-week interval arms no timer that overflows (no TimeoutOverflowWarning)', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    const s = new Scheduler({ concurrency: 1, clock: realClock }, { run: async () => undefined });
    try {
      s.update([target('yearly', 52 * WEEK)]);
      // Node emits the warning on the next tick after the setTimeout call
      await settle();
      assert.deepEqual(warnings.filter((w) => w.name === 'TimeoutOverflowWarning').map((w) => w.message), []);
    } finally {
      s.stop();
      process.off('warning', onWarning);
    }
  });

  test('an interval too large for a number never ticks instead of breaking the heap', async () => {
    const clock = new RecordingClock();
    let runs = 0;
    const s = new Scheduler({ concurrency: 1, clock }, { run: async () => void runs++ });
    s.update([target('never', Number.POSITIVE_INFINITY), target('minute', 60_000)]);
    assert.equal(s.nextTickOf('never/heap'), Infinity);
    await clock.advance(120_000);
    assert.equal(runs, 2, 'the other loop keeps its schedule');
    s.stop();
  });
});
