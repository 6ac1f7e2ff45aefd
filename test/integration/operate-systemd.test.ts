import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { requirePeer } from '../helpers/peers.js';

// systemd/pprof-scraper.service: the directives the unit must carry,
// `systemd-analyze verify` clean, and an exposure score of 1.5 or lower.

const UNIT = fileURLToPath(new URL('../../systemd/pprof-scraper.service', import.meta.url));
const CLI = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url));
const MAX_EXPOSURE = 1.5;

function run(file: string, args: string[], cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, timeout: 60_000, env: { ...process.env, SYSTEMD_LOG_COLOR: '0', SYSTEMD_PAGER: '' } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, stdout, stderr: err && typeof err.code !== 'number' ? `${stderr}${err.message}` : stderr });
    });
  });
}

const analyze = await run('systemd-analyze', ['--version']);
const skip = requirePeer('systemd', analyze.code === 0, `systemd-analyze --version failed: ${analyze.stderr.trim() || 'not found'}`);

/** The [Service] section's settings, key → every value given (in order). */
function serviceSettings(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    if (section !== 'Service') continue;
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

test('the unit carries the required settings and hardening', async () => {
  const text = await readFile(UNIT, 'utf8');
  const s = serviceSettings(text);
  const one = (key: string): string | undefined => s.get(key)?.at(-1);
  assert.ok(['exec', 'notify'].includes(one('Type') ?? ''), `Type=${one('Type')}`);
  assert.match(one('ExecStart') ?? '', /\/pprof-scraper run --config \/etc\/pprof-scraper\/config\.yaml$/);
  assert.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
  assert.equal(one('Restart'), 'on-failure');
  assert.ok(one('DynamicUser') === 'yes' || (one('User') ?? '') !== '', 'a dedicated user or DynamicUser=yes');
  assert.equal(one('StateDirectory'), 'pprof-scraper');
  assert.equal(one('ConfigurationDirectory'), 'pprof-scraper');
  assert.equal(one('EnvironmentFile'), '-/etc/default/pprof-scraper');
  const hardening: Record<string, string> = {
    NoNewPrivileges: 'yes',
    ProtectSystem: 'strict',
    ProtectHome: 'yes',
    PrivateTmp: 'yes',
    PrivateDevices: 'yes',
    ProtectKernelTunables: 'yes',
    ProtectKernelModules: 'yes',
    ProtectControlGroups: 'yes',
    RestrictAddressFamilies: 'AF_UNIX AF_INET AF_INET6',
    RestrictNamespaces: 'yes',
    LockPersonality: 'yes',
    SystemCallArchitectures: 'native',
    CapabilityBoundingSet: '',
  };
  for (const [key, value] of Object.entries(hardening)) assert.equal(one(key), value, `${key}=${value}`);
  assert.equal(s.has('MemoryDenyWriteExecute'), false, "MemoryDenyWriteExecute breaks V8's JIT");
  // Docker discovery's group is documented, and off by default
  assert.match(text, /^#SupplementaryGroups=docker$/m);
  assert.match(text, /Docker discovery/);
});

test('systemd-analyze verify passes on the unit', { skip, timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-unit-'));
  try {
    // verify insists that ExecStart's binary exists: point a copy at this checkout's CLI
    const text = await readFile(UNIT, 'utf8');
    const copy = join(dir, 'pprof-scraper.service');
    const execStart = /^ExecStart=(\S+)(.*)$/m;
    assert.match(text, execStart);
    await writeFile(copy, text.replace(execStart, `ExecStart=${process.execPath} ${CLI}$2`));
    const verified = await run('systemd-analyze', ['verify', copy], dir);
    const complaints = `${verified.stdout}${verified.stderr}`.split('\n').filter((l) => l.includes('pprof-scraper.service'));
    assert.equal(verified.code, 0, verified.stderr);
    assert.deepEqual(complaints, []);

    // and the check bites: a misspelt setting is reported
    const broken = join(dir, 'broken', 'pprof-scraper.service');
    await mkdir(join(dir, 'broken'));
    await writeFile(broken, text.replace(execStart, `ExecStart=${process.execPath} ${CLI}$2`).replace('ProtectSystem=strict', 'ProtectSytem=strict'));
    const bad = await run('systemd-analyze', ['verify', broken], dir);
    const badComplaints = `${bad.stdout}${bad.stderr}`.split('\n').filter((l) => l.includes('pprof-scraper.service'));
    assert.match(badComplaints.join('\n'), /Unknown key.*ProtectSytem/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test(`systemd-analyze security scores the unit ${MAX_EXPOSURE} or lower`, { skip, timeout: 60_000 }, async () => {
  const scored = await run('systemd-analyze', ['security', '--offline=yes', UNIT]);
  const m = /Overall exposure level for pprof-scraper\.service: (\d+\.\d+)/.exec(`${scored.stdout}${scored.stderr}`);
  assert.ok(m, `no score in:\n${scored.stdout}${scored.stderr}`);
  const score = Number(m[1]);
  assert.ok(score <= MAX_EXPOSURE, `exposure ${score} > ${MAX_EXPOSURE}:\n${scored.stdout}`);
});
