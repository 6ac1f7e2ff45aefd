import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DAEMON_NODE_FLAGS } from '../../bench/lib/paths.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

// V8 flags go on node's command line, in every launcher of the daemon (docs/performance.md)
const FLAGS = ['--liftoff-only', '--heap-growing-percent=50'];
const FLAG = FLAGS.join(' ');

void test('the daemon sets no V8 flag at run time', () => {
  const files = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length > 0);
  assert.deepEqual(files.filter((f) => read(join('src', f)).includes('setFlagsFromString')), []);
});

void test(`every launcher runs node ${FLAG}, and this node takes them`, () => {
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
  assert.equal(pkg.scripts['start'], `node ${FLAG} dist/cli/index.js run`);
  assert.match(read('systemd/pprof-scraper.service'), new RegExp(`^ExecStart=/usr/bin/env node ${FLAG} /usr/local/bin/pprof-scraper run `, 'm'));
  assert.match(read('Dockerfile'), new RegExp(`^ENTRYPOINT \\[${['node', ...FLAGS].map((f) => `"${f}", `).join('')}`, 'm'));
  assert.deepEqual(DAEMON_NODE_FLAGS, FLAGS, 'the benchmarks run the daemon as it ships');
  // were a Node release to drop the flag, every launcher would fail to start
  const run = spawnSync(process.execPath, [...FLAGS, '-e', '0'], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
});
