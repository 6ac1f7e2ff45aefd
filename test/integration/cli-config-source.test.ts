import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { runCli, started, startDaemon } from '../helpers/cli.js';

// Which config a command uses without --config (flag > PPROF_SCRAPER_CONFIG >
// the system file > the embedded default), said at start and by `check`; and
// what the build records for --version and pprof_scraper_build_info.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-config-source-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The environment without the caller's own choices, with the system config moved to `system`. */
function envWith(system: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PPROF_SCRAPER_SYSTEM_CONFIG: system, ...extra };
  if (!('PPROF_SCRAPER_CONFIG' in extra)) delete env['PPROF_SCRAPER_CONFIG'];
  return env;
}

/** A config with `n` directory repositories, so `check`'s verdict tells which file it read. */
async function configWith(name: string, n: number, listen = '127.0.0.1:0'): Promise<string> {
  const repos = Array.from({ length: n }, (_, i) => `  - directory: {name: d${i}, path: ${join(dir, `${name}-profiles-${i}`)}}`).join('\n');
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, `discovery: []\nrepositories:\n${repos}\nserver: {listen: "${listen}"}\nstate_dir: ${join(dir, `${name}-state`)}\n`);
  return file;
}

describe('check without --config', () => {
  test('no variable, no system file: the embedded default, and it says why', async () => {
    const r = await runCli(['check'], { env: envWith(join(dir, 'absent.yaml')) });
    assert.equal(r.code, 0, r.stderr);
    const [why, verdict] = r.stdout.trim().split('\n');
    assert.match(why ?? '', /^checking the embedded default config \(no --config, PPROF_SCRAPER_CONFIG not set, no .*absent\.yaml\)/);
    assert.match(verdict ?? '', /^<embedded default>: valid \(1 discovery entry/);
  });

  test('the system file when it exists; the variable over it; --config over both', async () => {
    const system = await configWith('system', 2);
    const fromEnv = await configWith('env', 3);
    const flag = await configWith('flag', 4);

    const s = await runCli(['check'], { env: envWith(system) });
    assert.equal(s.code, 0, s.stderr);
    assert.equal(s.stdout, `checking config ${system} (the system config; no --config, PPROF_SCRAPER_CONFIG not set)\n${system}: valid (0 discovery entries, 0 override rules, 2 repositories)\n`);

    const e = await runCli(['check'], { env: envWith(system, { PPROF_SCRAPER_CONFIG: fromEnv }) });
    assert.equal(e.code, 0, e.stderr);
    assert.equal(e.stdout, `checking config ${fromEnv} (from PPROF_SCRAPER_CONFIG; no --config given)\n${fromEnv}: valid (0 discovery entries, 0 override rules, 3 repositories)\n`);

    // an explicit --config prints only the verdict, as it always did
    const f = await runCli(['check', '--config', flag], { env: envWith(system, { PPROF_SCRAPER_CONFIG: fromEnv }) });
    assert.equal(f.code, 0, f.stderr);
    assert.equal(f.stdout, `${flag}: valid (0 discovery entries, 0 override rules, 4 repositories)\n`);
  });

  test('a variable naming a missing file is an error, not a fallback to the system file', async () => {
    const system = await configWith('system-fallback', 1);
    const missing = join(dir, 'missing.yaml');
    const r = await runCli(['check'], { env: envWith(system, { PPROF_SCRAPER_CONFIG: missing }) });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:1:1: cannot read the config file: ENOENT`, 'm'));
    assert.match(r.stdout, /: invalid\n$/);
  });

  test('an empty variable counts as unset', async () => {
    const system = await configWith('system-empty-env', 2);
    const r = await runCli(['check'], { env: envWith(system, { PPROF_SCRAPER_CONFIG: '' }) });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /the system config/);
  });
});

describe('run without --config', () => {
  test('logs which config it uses before loading it, runs on it, watches it, and exposes pprof_scraper_build_info', { timeout: 90_000 }, async () => {
    const system = await configWith('run-system', 1);
    const daemon = startDaemon([], { cwd: dir, env: envWith(system) });
    try {
      const url = await started(daemon);
      const using = await daemon.waitForLog(/^using config /);
      assert.equal(using['config'], system);
      assert.equal(using['from'], 'system');
      const running = await daemon.waitForLog(/^pprof-scraper running$/);
      assert.equal(running['config'], system);
      assert.equal(running['watching'], true, 'a config file found without --config is watched as one given with it');
      // the choice is logged before anything else happens
      assert.match(daemon.output().split('\n')[0] ?? '', /"msg":"using config /);

      // the status page says where the config came from
      const status = (await (await fetch(`${url}/status`)).json()) as { config: { source: string } };
      assert.equal(status.config.source, `${system} (the system config)`);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      const line = metrics.split('\n').find((l) => l.startsWith('pprof_scraper_build_info{'));
      assert.ok(line, 'pprof_scraper_build_info is exposed');
      const version = await runCli(['--version']);
      const commit = /^commit (\S+)$/m.exec(version.stdout)?.[1];
      assert.ok(commit);
      assert.equal(line, `pprof_scraper_build_info{version="${pkg.version}",commit="${commit}",node="${process.version}"} 1`);
    } finally {
      assert.deepEqual(await daemon.stop('SIGTERM'), { code: 0, signal: null }, daemon.output());
    }
  });

  test('an invalid system config stops the start, naming the file', { timeout: 60_000 }, async () => {
    const system = join(dir, 'bad-system.yaml');
    await writeFile(system, 'scrape: {interval: soon}\n');
    const r = await runCli(['run'], { env: envWith(system) });
    assert.equal(r.code, 1);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines[0]?.['from'], 'system');
    assert.ok(lines.some((l) => l['file'] === system && l['path'] === 'scrape.interval'), r.stdout);
  });
});

describe('--version and the recorded commit', () => {
  const exec = promisify(execFile);

  test('--version prints the version, the commit the build recorded, and Node', async () => {
    const r = await runCli(['--version']);
    assert.equal(r.code, 0);
    const recorded = JSON.parse(await readFile(join(ROOT, 'dist', 'build-info.json'), 'utf8')) as { commit: string };
    assert.equal(r.stdout, `pprof-scraper ${pkg.version}\ncommit ${recorded.commit}\nnode ${process.version}\n`);
    // built from this checkout: its HEAD (maybe -dirty), unless built from an exported tree
    const head = await exec('git', ['rev-parse', 'HEAD'], { cwd: ROOT }).then((o) => o.stdout.trim(), () => undefined);
    if (head !== undefined && process.env['PPROF_SCRAPER_COMMIT'] === undefined) assert.match(recorded.commit, new RegExp(`^${head}(-dirty)?$`));
  });

  test('build-info.sh: "unknown" outside git, PPROF_SCRAPER_COMMIT when given, a refusal for a bad one; the CLI reads what it wrote', async () => {
    // an exported tree: the script, package.json and a built CLI, no .git
    const tree = await mkdtemp(join(dir, 'exported-'));
    await mkdir(join(tree, 'scripts'));
    await cp(join(ROOT, 'scripts', 'build-info.sh'), join(tree, 'scripts', 'build-info.sh'));
    await cp(join(ROOT, 'package.json'), join(tree, 'package.json'));
    await cp(join(ROOT, 'dist'), join(tree, 'dist'), { recursive: true });
    await rm(join(tree, 'dist', 'build-info.json'));
    await symlink(await realpath(join(ROOT, 'node_modules')), join(tree, 'node_modules'));
    const env: NodeJS.ProcessEnv = { ...process.env, GIT_CEILING_DIRECTORIES: dir };
    delete env['PPROF_SCRAPER_COMMIT'];
    const cli = join(tree, 'dist', 'cli', 'index.js');

    const noFile = await exec(process.execPath, [cli, '--version']);
    assert.match(noFile.stdout, /^commit unknown$/m, 'no build-info.json: unknown');

    await exec('sh', [join(tree, 'scripts', 'build-info.sh')], { env });
    assert.deepEqual(JSON.parse(await readFile(join(tree, 'dist', 'build-info.json'), 'utf8')), { commit: 'unknown' });

    const given = '0123456789abcdef0123456789abcdef01234567';
    await exec('sh', [join(tree, 'scripts', 'build-info.sh')], { env: { ...env, PPROF_SCRAPER_COMMIT: given } });
    assert.match((await exec(process.execPath, [cli, '--version'])).stdout, new RegExp(`^commit ${given}$`, 'm'));

    const bad = await exec('sh', [join(tree, 'scripts', 'build-info.sh')], { env: { ...env, PPROF_SCRAPER_COMMIT: '$(reboot)' } }).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    assert.ok(bad, 'a bad PPROF_SCRAPER_COMMIT is refused');
    assert.match(bad.stderr, /PPROF_SCRAPER_COMMIT=\$\(reboot\) is not a commit id/);

    // a hand-edited file with something else in it is not believed
    await writeFile(join(tree, 'dist', 'build-info.json'), '{"commit":"<script>"}');
    assert.match((await exec(process.execPath, [cli, '--version'])).stdout, /^commit unknown$/m);
  });
});
