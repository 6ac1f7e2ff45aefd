import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli, startDaemon } from '../helpers/cli.js';
import { exposedValue } from '../helpers/metrics.js';
import { httpGet } from '../helpers/operate.js';

// The commands as an operator runs them (the built CLI): a config that hurts
// is reported like any other bad config, and no secret reaches the output.

const REPO = 'repositories:\n  - directory: {path: ./p}\n';
const ALIAS_BOMB = `${['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i']
  .map((name, i, all) => `${name}: &${name} [${Array.from({ length: 9 }, () => (i === 0 ? '"lol"' : `*${all[i - 1] ?? ''}`)).join(', ')}]`)
  .join('\n')}\n${REPO}`;

const STACK_LINE = /^\s+at /m;

describe('check and targets', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-config-cli-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('check on an alias bomb: exit 1, the place of the error, no stack trace, at once', async () => {
    const file = join(dir, 'bomb.yaml');
    await writeFile(file, ALIAS_BOMB);
    const started = Date.now();
    const r = await runCli(['check', '--config', file], { timeoutMs: 10_000 });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:6:8: f\\[0\\]: aliases expand the config by more than 100000 values`, 'm'));
    assert.doesNotMatch(r.stderr, STACK_LINE);
    assert.equal(r.stdout, `${file}: invalid\n`);
    assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
  });

  test('a token of digits from the environment checks as valid', async () => {
    const file = join(dir, 'token.yaml');
    await writeFile(file, `scrape:\n  bearer_token: \${TOKEN}\n${REPO}`);
    const r = await runCli(['check', '--config', file], { env: { ...process.env, TOKEN: '123456' } });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!(r.stdout + r.stderr).includes('123456'));
  });

  test('check and targets on a bad config show no secret: not a password, a value from the environment, nor a URL password', async () => {
    const file = join(dir, 'secrets.yaml');
    await writeFile(
      file,
      [
        'scrape:',
        '  timeout: ${TIMEOUT}',
        'discovery:',
        '  - docker:',
        '      basic_auth: {username: u, password: 98765432}',
        'repositories:',
        '  - profefe: {url: "http://user:s3cret-pw@[bad"}',
        '',
      ].join('\n'),
    );
    const env = { ...process.env, TIMEOUT: 'env-s3cret' };
    for (const command of ['check', 'targets']) {
      const r = await runCli([command, '--config', file], { env });
      assert.equal(r.code, 1, r.stderr);
      const shown = r.stdout + r.stderr;
      for (const secret of ['98765432', 's3cret-pw', 'env-s3cret']) assert.ok(!shown.includes(secret), `${command} shows ${secret}:\n${shown}`);
      assert.match(r.stderr, /:2:12: scrape\.timeout: "\$\{TIMEOUT\}" is not a duration/);
      assert.match(r.stderr, /:5:43: discovery\[0\]\.docker\.basic_auth\.password: expected a string, got a number \(not shown: it is a secret\)/);
      assert.match(r.stderr, /:7:20: repositories\[0\]\.profefe\.url: "http:\/\/user:\*\*\*@\[bad" is not an http:\/\/ or https:\/\/ URL/);
    }
  });
});

test('SIGHUP with an alias bomb: the daemon runs on with the old config, and says so in the log and the metrics', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-config-hup-'));
  const file = join(dir, 'config.yaml');
  await writeFile(file, `scrape: {interval: 1h}\nrepositories:\n  - directory: {path: "${join(dir, 'profiles')}"}\nserver: {listen: "127.0.0.1:0"}\nstate_dir: "${join(dir, 'state')}"\n`);
  const d = startDaemon(['--config', file, '--no-watch-config'], { cwd: dir });
  try {
    const running = await d.waitForLog(/^pprof-scraper running$/);
    const base = `http://${String(running['listen'])}`;
    await writeFile(file, ALIAS_BOMB);
    d.child.kill('SIGHUP');
    const refused = await d.waitForLog(/^reload refused: the config is not valid/);
    assert.equal(refused['trigger'], 'signal');
    assert.match(d.output(), /"line":6,"column":8,"path":"f\[0\]".*aliases expand the config/);
    assert.doesNotMatch(d.output(), STACK_LINE);
    const metrics = (await httpGet(`${base}/metrics`)).text;
    assert.equal(exposedValue(metrics, 'pprof_scraper_config_reloads_total', { trigger: 'signal', result: 'invalid' }), 1);
    assert.equal(exposedValue(metrics, 'pprof_scraper_config_last_reload_successful'), 0);
    assert.equal((await httpGet(`${base}/healthz`)).status, 200, 'still serving');
    assert.deepEqual(await d.stop(), { code: 0, signal: null });
  } finally {
    await d.stop('SIGKILL').catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
});
