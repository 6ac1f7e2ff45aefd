import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LruMap } from '../../src/lru.js';

const sized = (maxBytes: number) => new LruMap<string, number>(maxBytes, (bytes) => bytes);

test('over its budget, the least recently set go first; setting a key again makes it the most recent', () => {
  const lru = sized(10);
  assert.equal(lru.set('a', 4), 0);
  assert.equal(lru.set('b', 4), 0);
  assert.equal(lru.set('a', 4), 0, 'a again: now the most recent');
  assert.equal(lru.set('c', 4), 1);
  assert.deepEqual([...lru.keys()], ['a', 'c']);
  assert.equal(lru.bytes, 8);
  // reading does not make an entry recent
  assert.equal(lru.get('a'), 4);
  assert.equal(lru.set('d', 4), 1);
  assert.deepEqual([...lru.keys()], ['c', 'd']);
});

test('the entry just set stays, alone, even over the budget', () => {
  const lru = sized(10);
  lru.set('a', 3);
  assert.equal(lru.set('big', 25), 1);
  assert.deepEqual([...lru.keys()], ['big']);
  assert.equal(lru.bytes, 25);
});

test('stale entries go oldest first, uncounted, up to the first fresh one within the budget', () => {
  const lru = sized(100);
  for (const [k, v] of [['old1', 1], ['old2', 2], ['fresh', 10], ['old3', 3]] as const) lru.set(k, v);
  const stale = (_v: number, k: string): boolean => k.startsWith('old');
  assert.equal(lru.set('new', 5, stale), 0);
  assert.deepEqual([...lru.keys()], ['fresh', 'old3', 'new'], 'stops at the first it keeps');
  assert.equal(lru.bytes, 18);
});

test('delete and clear keep the byte count', () => {
  const lru = sized(100);
  lru.set('a', 7);
  lru.set('b', 9);
  assert.equal(lru.delete('a'), true);
  assert.equal(lru.delete('a'), false);
  assert.deepEqual([lru.size, lru.bytes, lru.has('b')], [1, 9, true]);
  lru.clear();
  assert.deepEqual([lru.size, lru.bytes], [0, 0]);
});
