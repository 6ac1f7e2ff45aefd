import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runCli } from '../helpers/cli.js';

// --log-format beside --log-level, on the built CLI: JSON lines or logfmt,
// levels by name in both.

const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-logfmt-'));
after(() => rm(dir, { recursive: true, force: true }));
const bad = join(dir, 'bad.yaml');
await writeFile(bad, 'scrape: {interval: soon}\nrepositories: []\n');

test('--log-format logfmt: ts=… level=error msg="…" with the fields after, values with spaces quoted', async () => {
  const r = await runCli(['--log-format', 'logfmt', 'run', '--config', bad]);
  assert.equal(r.code, 1);
  const lines = r.stdout.trim().split('\n');
  assert.ok(lines.length >= 2, r.stdout);
  for (const line of lines) assert.match(line, /^ts=\d{4}-\d\d-\d\dT\S+Z level=(error|fatal|info|warn) msg=("([^"\\]|\\.)*"|\S+)( [A-Za-z_]+=("([^"\\]|\\.)*"|\S*))*$/, line);
  const interval = lines.find((l) => l.includes('path=scrape.interval'));
  assert.ok(interval, r.stdout);
  // the message quotes the value: its quotes are escaped inside the quoted logfmt value
  assert.match(interval, /^ts=\S+ level=error msg="\\"soon\\" is not a duration: [^"\\]*" file=\S+bad\.yaml line=1 column=20 path=scrape\.interval( trigger=start)?$/);
});

test('JSON lines by default off a terminal, the level by name', async () => {
  const r = await runCli(['run', '--config', bad]);
  assert.equal(r.code, 1);
  const records = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(records.length >= 2);
  assert.ok(records.every((rec) => typeof rec['level'] === 'string'), r.stdout);
  // the line that says which config is used, then the config's errors
  assert.deepEqual([...new Set(records.map((rec) => rec['level']))], ['info', 'error', 'fatal']);
  assert.match(String(records[0]?.['msg']), /^using /);
});

test('--log-format refuses what it does not know', async () => {
  const r = await runCli(['--log-format', 'xml', 'check', '--config', bad]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--log-format.*xml.*json, logfmt/);
});
