/**
 * A clean Debian 12 root made by debootstrap, the .deb `npm run package`
 * builds, and a stand-in `nodejs` package: what the package test installs
 * into, and what the quickstart test boots as the daemon's VM.
 *
 * The root is cached as a tarball in the temp folder for a week: debootstrap
 * takes 2 to 10 minutes. It holds minbase plus what any systemd host has
 * (adduser, systemd, procps) and what a fresh cloud VM has (sudo, curl).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, realpath, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };

export const PACKAGE_VERSION = pkg.version;
/** Where `npm run package` writes the .deb. */
export const DEB = join(ROOT, `pprof-scraper_${pkg.version}_all.deb`);
const SUITE = 'bookworm';
const INCLUDE = 'adduser,systemd,procps,sudo,curl';
const MIRROR = process.env['PPROF_SCRAPER_DEBIAN_MIRROR'] ?? 'http://deb.debian.org/debian';
const ROOT_CACHE = join(tmpdir(), `pprof-scraper-test-root-${SUITE}-${createHash('sha256').update(`${INCLUDE} ${MIRROR}`).digest('hex').slice(0, 12)}.tar`);
const CACHE_MAX_AGE_MS = 7 * 24 * 3600_000;

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; never throws for an exit code. */
export function run(file: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<Ran> {
  return new Promise((resolve) => {
    const child = execFile(file, args, { cwd: opts.cwd, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr: err && typeof err.code !== 'number' ? `${stderr}${err.message}` : stderr });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Runs a command that must exit 0; its stdout. */
export async function ok(file: string, args: string[], opts: Parameters<typeof run>[2] = {}): Promise<string> {
  const r = await run(file, args, opts);
  assert.equal(r.code, 0, `${file} ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

export async function which(bin: string): Promise<boolean> {
  return (await run('sh', ['-c', `command -v ${bin}`])).code === 0;
}

/** What this machine lacks to make a root and install into it (root, dpkg, debootstrap, chroot, tar); empty when nothing. */
export async function debianRootMissing(): Promise<string[]> {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('not running as root (dpkg --root and chroot need it)');
  for (const bin of ['dpkg', 'dpkg-deb', 'debootstrap', '/usr/sbin/chroot', 'tar']) if (!(await which(bin))) missing.push(`${bin} not found (Debian: apt-get install dpkg debootstrap)`);
  return missing;
}

/** A clean Debian root in `into` (a new folder): from the cache, or made by debootstrap and then cached. */
export async function cleanRoot(into: string): Promise<void> {
  await mkdir(into);
  const cached = await stat(ROOT_CACHE).catch(() => undefined);
  if (cached && Date.now() - cached.mtimeMs < CACHE_MAX_AGE_MS) {
    await ok('tar', ['-C', into, '-xpf', ROOT_CACHE], { timeoutMs: 600_000 });
    return;
  }
  const made = await run('debootstrap', ['--variant=minbase', `--include=${INCLUDE}`, SUITE, into, MIRROR], { timeoutMs: 40 * 60_000 });
  assert.equal(made.code, 0, `debootstrap ${SUITE} from ${MIRROR} failed (set PPROF_SCRAPER_DEBIAN_MIRROR to a reachable mirror):\n${made.stdout.slice(-4000)}\n${made.stderr.slice(-4000)}`);
  const partial = `${ROOT_CACHE}.${process.pid}`;
  await ok('tar', ['-C', into, '-cf', partial, '.'], { timeoutMs: 600_000 });
  await ok('mv', [partial, ROOT_CACHE]);
}

/** A `nodejs` package holding this test's own node binary: what Node's apt repository provides. */
export async function standInNodejs(dir: string): Promise<string> {
  const arch = (await ok('dpkg', ['--print-architecture'])).trim();
  const tree = join(dir, 'nodejs-pkg');
  await mkdir(join(tree, 'DEBIAN'), { recursive: true });
  await mkdir(join(tree, 'usr', 'bin'), { recursive: true });
  await copyFile(await realpath(process.execPath), join(tree, 'usr', 'bin', 'node'));
  await writeFile(
    join(tree, 'DEBIAN', 'control'),
    `Package: nodejs\nVersion: ${process.versions.node}-test\nArchitecture: ${arch}\nMaintainer: pprof-scraper tests <tests@localhost>\nDescription: the node binary running the test suite\n`,
  );
  const deb = join(dir, `nodejs_${process.versions.node}-test_${arch}.deb`);
  await ok('dpkg-deb', ['--root-owner-group', '--build', tree, deb]);
  return deb;
}

/** The build's stdout line: `pprof-scraper_<version>_all.deb (N KiB, M KiB installed)`. */
export const PACKAGE_LINE = new RegExp(`^pprof-scraper_${pkg.version.replace(/\./g, '\\.')}_all\\.deb \\(\\d+ KiB, \\d+ KiB installed\\)$`, 'm');

/**
 * `npm run package`, then a private copy of the .deb in `dir`: the package
 * test and the quickstart test may run side by side, and the build writes
 * one file at the root of the checkout, so builds take turns (flock) and
 * each test installs its own copy. PPROF_SCRAPER_PACKAGE_PREBUILT=1 takes the
 * .deb already at the root (just built by `npm run package`) instead.
 */
export async function buildDeb(dir: string): Promise<{ deb: string; stdout: string | undefined }> {
  const copy = join(dir, `pprof-scraper_${pkg.version}_all.deb`);
  if (process.env['PPROF_SCRAPER_PACKAGE_PREBUILT'] === '1') {
    assert.ok(existsSync(DEB), `PPROF_SCRAPER_PACKAGE_PREBUILT=1 but there is no ${DEB}: run npm run package`);
    await copyFile(DEB, copy);
    return { deb: copy, stdout: undefined };
  }
  // a loaded machine takes minutes for tsc and npm ci
  const lock = join(tmpdir(), 'pprof-scraper-package.lock');
  const built = await run('flock', [lock, 'sh', '-c', 'npm run --silent package && cp "$1" "$2"', 'package', DEB, copy], { cwd: ROOT, timeoutMs: 45 * 60_000 });
  assert.equal(built.code, 0, `npm run package failed:\n${built.stdout}\n${built.stderr}`);
  return { deb: copy, stdout: built.stdout };
}
