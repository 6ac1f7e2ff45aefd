import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildDeb, cleanRoot, debianRootMissing, ok, PACKAGE_LINE, PACKAGE_VERSION, run, standInNodejs } from '../helpers/debian-root.js';
import type { Ran } from '../helpers/debian-root.js';
import { requirePeer } from '../helpers/peers.js';

// `npm run package` builds the .deb; it is installed with dpkg into a clean
// Debian 12 root made by debootstrap (test/helpers/debian-root.ts), where `pprof-scraper check`, `--version`
// and `systemd-analyze verify` run chrooted; then removed and purged, and the
// root compared with what it was.
//
// The nodejs dependency is satisfied, not ignored: Debian 12's own nodejs is
// 18, so the test builds a stand-in `nodejs` package holding the node that
// runs this test (20 or later), as Node's own apt repository would provide.
//
// debootstrap takes 2 to 10 minutes the first time (the root is cached for a
// week), the rest of the test about 3.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A command inside the root, with a clean environment, as an operator's shell would run it. */
function inRoot(root: string, args: string[], opts: { userspec?: string; env?: Record<string, string> } = {}): Promise<Ran> {
  const env = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8', SYSTEMD_LOG_COLOR: '0', SYSTEMD_PAGER: '', ...opts.env };
  return run('/usr/sbin/chroot', [...(opts.userspec ? [`--userspec=${opts.userspec}`] : []), root, ...args], { env, timeoutMs: 120_000 });
}

const missing = await debianRootMissing();
const skip = requirePeer('debian', missing.length === 0, missing.join('; '));

let work: string | undefined;
after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const SKIP_IN_SNAPSHOT = ['proc', 'sys', 'dev', 'run', 'tmp', 'var/lib/dpkg', 'var/log', 'var/cache/debconf'];

/** Every path in the root (outside dpkg's own records and the logs), with a hash of each /etc file. */
async function snapshot(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    for (const name of await readdir(join(root, rel))) {
      const p = rel ? `${rel}/${name}` : name;
      if (SKIP_IN_SNAPSHOT.includes(p)) continue;
      const st = await lstat(join(root, p));
      if (st.isDirectory()) {
        out.set(`${p}/`, '');
        await walk(p);
      } else if (st.isFile() && p.startsWith('etc/')) {
        out.set(p, createHash('sha256').update(await readFile(join(root, p))).digest('hex'));
      } else {
        out.set(p, st.isSymbolicLink() ? `-> ${await readlink(join(root, p))}` : '');
      }
    }
  };
  await walk('');
  return out;
}

function diff(before: Map<string, string>, afterPurge: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [p, v] of afterPurge) if (!before.has(p)) out.push(`added ${p}`);
  else if (before.get(p) !== v) out.push(`changed ${p}`);
  for (const p of before.keys()) if (!afterPurge.has(p)) out.push(`removed ${p}`);
  return out.sort();
}

test('the .deb: builds, installs into a clean Debian root, checks its config there, verifies its unit, and purges clean', { skip, timeout: 90 * 60_000 }, async () => {
  work = await mkdtemp(join(tmpdir(), 'pprof-scraper-deb-'));
  const root = join(work, 'root');

  // --- build (PPROF_SCRAPER_PACKAGE_PREBUILT=1: the .deb at the root was just built by `npm run package`)
  const { deb, stdout: built } = await buildDeb(work);
  if (built !== undefined) assert.match(built, PACKAGE_LINE);
  const field = async (name: string): Promise<string> => (await ok('dpkg-deb', ['--field', deb, name])).trim();
  assert.equal(await field('Architecture'), 'all');
  assert.equal(await field('Version'), PACKAGE_VERSION);
  assert.match(await field('Depends'), /(^|, )nodejs \(>= 20\)(,|$)/);
  const listing = await ok('dpkg-deb', ['--contents', deb]);
  assert.match(listing, /\.\/usr\/bin\/pprof-scraper -> \.\.\/lib\/pprof-scraper\/dist\/cli\/index\.js/);
  assert.ok(!/\.\/usr\/lib\/pprof-scraper\/(src|test|bench)\//.test(listing), 'no sources or tests in the package');
  assert.ok(!/node_modules\/(typescript|tsx|eslint|esbuild)\//.test(listing), 'no dev dependencies in the package');
  assert.ok(!/prebuilds\/(win32|darwin)-/.test(listing), 'no native builds for other systems');
  assert.match(listing, /node_modules\/@datadog\/pprof\/prebuilds\/linux-x64\//);
  assert.match(listing, /\.\/usr\/lib\/pprof-scraper\/dist\/build-info\.json/);

  // --- a clean root, and the dependency
  await cleanRoot(root);
  const nodejs = await standInNodejs(work);
  const dpkg = (...args: string[]): Promise<Ran> => run('dpkg', ['--root', root, ...args], { timeoutMs: 300_000 });

  // without Node the package does not configure: the dependency is real
  const alone = await dpkg('--install', deb);
  assert.notEqual(alone.code, 0, 'installed without nodejs');
  assert.match(alone.stderr, /depends on nodejs \(>= 20\)/);
  assert.equal((await dpkg('--purge', 'pprof-scraper')).code, 0);

  assert.equal((await dpkg('--install', nodejs)).code, 0);
  const before = await snapshot(root);

  // --- install
  const installed = await dpkg('--install', deb);
  assert.equal(installed.code, 0, `${installed.stdout}\n${installed.stderr}`);
  assert.equal(await readlink(join(root, 'usr/bin/pprof-scraper')), '../lib/pprof-scraper/dist/cli/index.js');

  const passwd = (await readFile(join(root, 'etc/passwd'), 'utf8')).split('\n').find((l) => l.startsWith('pprof-scraper:'));
  assert.ok(passwd, 'the pprof-scraper user exists');
  const [, , uid, gid, , home, shell] = passwd.split(':');
  assert.ok(Number(uid) < 1000, `a system user (uid ${uid})`);
  assert.equal(home, '/var/lib/pprof-scraper');
  assert.equal(shell, '/usr/sbin/nologin');
  const state = await stat(join(root, 'var/lib/pprof-scraper'));
  assert.deepEqual([state.uid, state.gid, state.mode & 0o777], [Number(uid), Number(gid), 0o750]);
  const conf = await stat(join(root, 'etc/pprof-scraper/config.yaml'));
  assert.deepEqual([conf.uid, conf.gid, conf.mode & 0o777], [0, Number(gid), 0o640], 'the config is readable by root and the service group only');
  const conffiles = await ok('dpkg-query', ['--admindir', join(root, 'var/lib/dpkg'), '--showformat=${Conffiles}', '--show', 'pprof-scraper']);
  assert.match(conffiles, /\/etc\/pprof-scraper\/config\.yaml [0-9a-f]{32}/);
  assert.match(conffiles, /\/etc\/default\/pprof-scraper [0-9a-f]{32}/);

  // --- check, with no --config: the system config, and it says so
  const check = await inRoot(root, ['pprof-scraper', 'check']);
  assert.equal(check.code, 0, `${check.stdout}\n${check.stderr}`);
  assert.equal(
    check.stdout,
    'checking config /etc/pprof-scraper/config.yaml (the system config; no --config, PPROF_SCRAPER_CONFIG not set)\n/etc/pprof-scraper/config.yaml: valid (1 discovery entry, 0 override rules, 1 repository)\n',
  );
  // as the service's user too; and not as anyone else
  const asService = await inRoot(root, ['runuser', '-u', 'pprof-scraper', '--', 'pprof-scraper', 'check']);
  assert.equal(asService.code, 0, asService.stderr);
  const asNobody = await inRoot(root, ['pprof-scraper', 'check'], { userspec: '65534:65534' });
  assert.equal(asNobody.code, 1);
  assert.match(asNobody.stderr, /\/etc\/pprof-scraper\/config\.yaml:1:1: cannot read the config file: EACCES/);

  const version = await inRoot(root, ['pprof-scraper', '--version']);
  assert.equal(version.code, 0, version.stderr);
  const recorded = JSON.parse(await readFile(join(ROOT, 'dist/build-info.json'), 'utf8')) as { commit: string };
  assert.equal(version.stdout, `pprof-scraper ${PACKAGE_VERSION}\ncommit ${recorded.commit}\nnode ${process.version}\n`);

  // --- the unit: verified by the root's own systemd, reload by SIGHUP, exposure 1.5 or lower
  const unit = await readFile(join(root, 'usr/lib/systemd/system/pprof-scraper.service'), 'utf8');
  // node's own flags as the unit in systemd/ has them (test/unit/node-flags.test.ts)
  assert.match(unit, /^ExecStart=\/usr\/bin\/env node --liftoff-only --heap-growing-percent=50 \/usr\/bin\/pprof-scraper run --config \/etc\/pprof-scraper\/config\.yaml$/m);
  assert.match(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  assert.match(unit, /^User=pprof-scraper$/m);
  assert.doesNotMatch(unit, /^DynamicUser=/m);
  assert.ok(existsSync(join(root, 'bin/kill')), '/bin/kill, which ExecReload runs, is there (procps)');
  const verified = await inRoot(root, ['systemd-analyze', 'verify', 'pprof-scraper.service']);
  assert.equal(verified.code, 0, `${verified.stdout}${verified.stderr}`);
  assert.deepEqual(`${verified.stdout}${verified.stderr}`.split('\n').filter((l) => l.includes('pprof-scraper')), []);
  const scored = await inRoot(root, ['systemd-analyze', 'security', '--offline=yes', 'pprof-scraper.service']);
  const score = /Overall exposure level for pprof-scraper\.service: (\d+\.\d+)/.exec(`${scored.stdout}${scored.stderr}`);
  assert.ok(score, `${scored.stdout}${scored.stderr}`);
  assert.ok(Number(score[1]) <= 1.5, `exposure ${score[1]} > 1.5`);

  // --- remove keeps the config and the state; purge takes them, the enablement link and the override
  await mkdir(join(root, 'etc/systemd/system/multi-user.target.wants'), { recursive: true });
  await symlink('/usr/lib/systemd/system/pprof-scraper.service', join(root, 'etc/systemd/system/multi-user.target.wants/pprof-scraper.service'));
  await mkdir(join(root, 'var/lib/pprof-scraper/data'));
  await writeFile(join(root, 'var/lib/pprof-scraper/data/queued'), 'a profile');
  const removed = await dpkg('--remove', 'pprof-scraper');
  assert.equal(removed.code, 0, removed.stderr);
  assert.ok(!existsSync(join(root, 'usr/lib/pprof-scraper')) && !existsSync(join(root, 'usr/bin/pprof-scraper')), 'remove takes the program');
  assert.ok(existsSync(join(root, 'etc/pprof-scraper/config.yaml')) && existsSync(join(root, 'var/lib/pprof-scraper/data/queued')), 'remove keeps the config and the state');

  const purged = await dpkg('--purge', 'pprof-scraper');
  assert.equal(purged.code, 0, purged.stderr);
  // the system user stays, as Debian leaves system users; /etc/passwd and friends change, nothing else
  const userFiles = ['etc/passwd', 'etc/passwd-', 'etc/group', 'etc/group-', 'etc/shadow', 'etc/shadow-', 'etc/gshadow', 'etc/gshadow-'];
  assert.deepEqual(
    diff(before, await snapshot(root)).filter((d) => !userFiles.includes(d.replace(/^\w+ /, ''))),
    // the folder `systemctl enable` made stays, as it would on a host
    ['added etc/systemd/system/multi-user.target.wants/'].filter((p) => !before.has(p.replace(/^added /, ''))),
  );
  assert.match(await readFile(join(root, 'etc/passwd'), 'utf8'), /^pprof-scraper:/m);
  assert.equal((await readFile(join(root, 'var/lib/dpkg/statoverride'), 'utf8')).includes('pprof-scraper'), false, 'the stat override is gone');
});

test('allowScripts: every dependency with an install script is reviewed, and the image skips only what it denies', async () => {
  const manifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { allowScripts?: Record<string, boolean> };
  const allow = manifest.allowScripts ?? {};
  // every installed package with an install script has an entry (npm install-scripts ls says the same)
  const lock = JSON.parse(await readFile(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { hasInstallScript?: boolean }> };
  const scripted = Object.entries(lock.packages)
    .filter(([, p]) => p.hasInstallScript)
    .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length));
  assert.ok(scripted.length > 0, 'the lockfile marks packages with install scripts');
  for (const name of scripted) assert.ok(Object.keys(allow).some((k) => k === name || k.startsWith(`${name}@`)), `${name} has an install script and no allowScripts entry: review it (npm install-scripts ls)`);
  // the Dockerfile runs npm ci with --ignore-scripts, which is only right while nothing is allowed
  const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
  if (/npm ci[^\n]*--ignore-scripts/.test(dockerfile)) {
    assert.deepEqual(Object.entries(allow).filter(([, v]) => v !== false), [], 'allowScripts allows a script the image build skips: drop --ignore-scripts from the Dockerfile (its npm must then read allowScripts)');
  }
});
