import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LastingKeys, LineLimiter } from '../../src/log-limiter.js';
import { FakeClock } from '../helpers/fake-clock.js';

/** A limiter on a fake clock, and every line it let out: one event's (its folded count before it) or a trailing one. */
function rig() {
  const clock = new FakeClock(0);
  const lines: { kind: 'event' | 'trailing'; folded: number; at: number }[] = [];
  const limiter = new LineLimiter((folded) => lines.push({ kind: 'trailing', folded, at: clock.now() }), { clock });
  const event = (): void => limiter.emit((folded) => lines.push({ kind: 'event', folded, at: clock.now() }));
  const accounted = (): number => lines.reduce((n, l) => n + (l.kind === 'event' ? 1 : 0) + l.folded, 0);
  return { clock, lines, limiter, event, accounted };
}

test('a burst within the second: one line, then a trailing line with the rest when the second is up', async () => {
  const { clock, lines, event, accounted } = rig();
  for (let i = 0; i < 5; i++) event();
  assert.deepEqual(lines, [{ kind: 'event', folded: 0, at: 0 }]);
  await clock.advance(999);
  assert.equal(lines.length, 1, 'nothing more before the second is up');
  await clock.advance(1);
  assert.deepEqual(lines[1], { kind: 'trailing', folded: 4, at: 1000 });
  assert.equal(accounted(), 5);
  await clock.advance(10_000);
  assert.equal(lines.length, 2, 'nothing folded: no more lines');
});

test('the next event line carries what was folded before it; no trailing line then', async () => {
  const { clock, lines, event, accounted } = rig();
  // an event as the second ends, before the limiter's timer fires
  clock.setTimeout(event, 1000);
  event();
  await clock.advance(100);
  event();
  event();
  await clock.advance(900);
  assert.deepEqual(lines, [
    { kind: 'event', folded: 0, at: 0 },
    { kind: 'event', folded: 2, at: 1000 },
  ]);
  await clock.advance(5000);
  assert.equal(lines.length, 2);
  assert.equal(accounted(), 4);
});

test('the next window: an event after a quiet second gets out with folded 0', async () => {
  const { clock, lines, event } = rig();
  event();
  event();
  await clock.advance(1000);
  assert.deepEqual(lines.at(-1), { kind: 'trailing', folded: 1, at: 1000 });
  // the trailing line starts a window of its own: one line a second at most
  event();
  assert.equal(lines.length, 2);
  await clock.advance(1000);
  assert.deepEqual(lines.at(-1), { kind: 'trailing', folded: 1, at: 2000 });
  await clock.advance(1500);
  event();
  assert.deepEqual(lines.at(-1), { kind: 'event', folded: 0, at: 3500 });
});

test('flush() tells what was folded at once, and stops the timer', async () => {
  const { clock, lines, limiter, event, accounted } = rig();
  event();
  event();
  event();
  limiter.flush();
  assert.deepEqual(lines.at(-1), { kind: 'trailing', folded: 2, at: 0 });
  limiter.flush();
  await clock.advance(5000);
  assert.equal(lines.length, 2);
  assert.equal(accounted(), 3);
});

test('any pattern of events: every one is accounted for, and no two lines come within a second', async () => {
  const { clock, lines, limiter, event, accounted } = rig();
  let events = 0;
  let seed = 7;
  for (let i = 0; i < 2000; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    await clock.advance(seed % 400);
    event();
    events++;
  }
  limiter.flush();
  assert.equal(accounted(), events);
  for (let i = 1; i < lines.length - 1; i++) assert.ok(lines[i]!.at - lines[i - 1]!.at >= 1000, `lines ${i - 1} and ${i} at ${lines[i - 1]!.at} and ${lines[i]!.at}`);
});

void test('LastingKeys: new when a round first has a key, not while it lasts, new again after a round without it', () => {
  const keys = new LastingKeys();
  assert.deepEqual(['a', 'b'].map((k) => keys.isNew(k)), [true, true]);
  keys.endRound();
  assert.deepEqual(['a', 'b', 'c'].map((k) => keys.isNew(k)), [false, false, true]);
  keys.endRound();
  assert.equal(keys.isNew('c'), false);
  keys.endRound();
  // a dropped in the last round: gone, and new when it comes back
  assert.equal(keys.isNew('a'), true);
  assert.equal(keys.isNew('a'), true, 'within a round, what the previous round lacked stays new');
});
