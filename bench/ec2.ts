/**
 * EC2 discovery at fleet size: the dry run (`targets --output json`) finding
 * N instances (N/1000 pages) on the loopback EC2 API, against Prometheus's own
 * dry run (`promtool check service-discovery` with an `ec2_sd_configs` entry)
 * on the same server and the same answers, in the same run.
 *
 *   npm run build
 *   node --import tsx bench/ec2.ts [--instances 10000] [--runs 3] [--promtool-timeout 15s]
 *     [--promtool /usr/bin/promtool] [--daemon dist/cli/index.js] [--out bench/results]
 *
 * Each process runs under /usr/bin/time: wall time, user + system CPU and peak
 * RSS (the kernel's maxrss) of that process alone. Runs alternate (ours,
 * promtool, ours, ...) and the table shows medians. promtool always waits its
 * whole --timeout before it prints, so its wall time includes that wait; the
 * "discovery" column is the span from the first to the last DescribeInstances
 * call as the server saw it, comparable for both.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fakeAwsEnv, FAKE_ACCESS_KEY_ID, fleet, startEc2Fake } from '../test/helpers/ec2-fake.js';
import type { Ec2Fake } from '../test/helpers/ec2-fake.js';
import { parseDuration, parseWhole, runMain, UsageError } from './lib/flags.js';
import { REPO_ROOT } from './lib/paths.js';

const REGION = 'us-east-1';
const TIME = '/usr/bin/time';

interface Options {
  instances: number;
  runs: number;
  promtoolTimeoutMs: number;
  promtool: string;
  daemonCli: string;
  outDir: string;
}

interface Measure {
  exitCode: number | null;
  wallS: number;
  cpuS: number;
  peakRssMiB: number;
  /** Targets the tool printed. */
  targets: number;
  stdoutBytes: number;
  /** First to last DescribeInstances call, as the server saw them. */
  discoveryS: number;
  describeCalls: number;
  stderrTail: string;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      instances: { type: 'string', default: '10000' },
      runs: { type: 'string', default: '3' },
      'promtool-timeout': { type: 'string', default: '15s' },
      promtool: { type: 'string', default: '/usr/bin/promtool' },
      daemon: { type: 'string', default: 'dist/cli/index.js' },
      out: { type: 'string', default: 'bench/results' },
    },
  });
  return {
    instances: parseWhole(values.instances, '--instances', 1, 1_000_000),
    runs: parseWhole(values.runs, '--runs', 1, 50),
    promtoolTimeoutMs: parseDuration(values['promtool-timeout'], '--promtool-timeout'),
    promtool: values.promtool,
    daemonCli: resolve(REPO_ROOT, values.daemon),
    outDir: resolve(REPO_ROOT, values.out),
  };
}

/** Runs one command under /usr/bin/time, with the fake counting the calls it gets meanwhile. */
async function measure(fake: Ec2Fake, label: string, command: string[], env: NodeJS.ProcessEnv, dir: string, countTargets: (stdout: string) => number): Promise<Measure> {
  const timeFile = join(dir, `${label}.time`);
  const calls: number[] = [];
  fake.onRequest = (r) => {
    if (r.action === 'DescribeInstances') calls.push(performance.now());
  };
  const child = spawn(TIME, ['-f', '%e %U %S %M', '-o', timeFile, ...command], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr = (stderr + s).slice(-4000)));
  const exitCode = await new Promise<number | null>((done, fail) => {
    child.on('error', fail);
    child.on('close', done);
  });
  fake.onRequest = undefined;
  const [wall, user, sys, rssKiB] = (await readFile(timeFile, 'utf8')).trim().split('\n').at(-1)!.split(' ').map(Number);
  const stdout = Buffer.concat(out).toString('utf8');
  let targets = 0;
  try {
    targets = countTargets(stdout);
  } catch {
    targets = -1;
  }
  await writeFile(join(dir, `${label}.stderr`), stderr);
  return {
    exitCode,
    wallS: wall!,
    cpuS: user! + sys!,
    peakRssMiB: rssKiB! / 1024,
    targets,
    stdoutBytes: Buffer.byteLength(stdout),
    discoveryS: calls.length > 1 ? (calls.at(-1)! - calls[0]!) / 1000 : 0,
    describeCalls: calls.length,
    stderrTail: stderr.split('\n').slice(-5).join('\n'),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function versionOf(command: string, args: string[]): Promise<string> {
  return new Promise((done) => {
    const c = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    c.stdout.setEncoding('utf8').on('data', (s: string) => (text += s));
    c.stderr.setEncoding('utf8').on('data', (s: string) => (text += s));
    c.on('error', () => done('unavailable'));
    c.on('close', () => done(text.split('\n')[0]?.trim() ?? ''));
  });
}

async function main(): Promise<void> {
  const o = options();
  if (!existsSync(o.daemonCli)) throw new UsageError(`${o.daemonCli} is missing: run npm run build first`);
  if (!existsSync(TIME)) throw new UsageError(`${TIME} is missing: install Debian's time package`);
  const havePromtool = existsSync(o.promtool);
  if (!havePromtool) console.error(`ec2 bench: ${o.promtool} not found (Debian's prometheus package); measuring the daemon alone`);

  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const dir = join(o.outDir, `${stamp}-ec2`);
  await mkdir(dir, { recursive: true });

  const fake = await startEc2Fake({ record: false, defaultPageSize: 1000 });
  // A fleet as operators tag it: Name, the pprof marker, team, env; half with a public address.
  fake.setInstances(
    REGION,
    fleet(o.instances, (n) => ({
      publicIp: n % 2 ? `54.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}` : null,
      tags: { Name: `svc-${n % 50}`, pprof: 'true', team: `team-${n % 7}`, env: n % 3 ? 'prod' : 'staging', 'aws:autoscaling:groupName': `asg-${n % 20}` },
    })),
  );

  const ours = join(dir, 'pprof-scraper.yaml');
  await writeFile(
    ours,
    `discovery:
  - ec2:
      region: ${REGION}
      endpoint: ${fake.url}
      filters: {"tag:pprof": ["true"]}
      tag_labels: [team, env]
repositories:
  - directory: {path: ${join(dir, 'profiles')}}
`,
  );
  const staticOnly = join(dir, 'static-only.yaml');
  await writeFile(staticOnly, `discovery:\n  - static: {targets: ["127.0.0.1:6060"]}\nrepositories:\n  - directory: {path: ${join(dir, 'profiles')}}\n`);
  const prom = join(dir, 'prometheus.yml');
  await writeFile(
    prom,
    `scrape_configs:
  - job_name: ec2
    ec2_sd_configs:
      - region: ${REGION}
        endpoint: ${fake.url}
        access_key: ${FAKE_ACCESS_KEY_ID}
        secret_key: fake-secret-access-key
        port: 6060
        filters:
          - name: tag:pprof
            values: ["true"]
`,
  );

  // Strips any AWS_* of the shell, the Node-version switch included: the daemon must keep the SDK quiet by itself.
  const env = fakeAwsEnv();
  const countOurs = (s: string): number => (JSON.parse(s) as { targets: unknown[] }).targets.length;
  const countProm = (s: string): number => (JSON.parse(s) as unknown[]).length;
  const ourCommand = (config: string): string[] => [process.execPath, o.daemonCli, 'targets', '--config', config, '--output', 'json'];
  const promCommand = [o.promtool, 'check', 'service-discovery', `--timeout=${Math.round(o.promtoolTimeoutMs / 1000)}s`, prom, 'ec2'];

  const results: { ours: Measure[]; promtool: Measure[]; staticOnly: Measure[] } = { ours: [], promtool: [], staticOnly: [] };
  try {
    results.staticOnly.push(await measure(fake, 'static-only', ourCommand(staticOnly), env, dir, countOurs));
    for (let run = 1; run <= o.runs; run++) {
      console.error(`ec2 bench: run ${run}/${o.runs}: pprof-scraper targets`);
      results.ours.push(await measure(fake, `pprof-scraper-${run}`, ourCommand(ours), env, dir, countOurs));
      if (havePromtool) {
        console.error(`ec2 bench: run ${run}/${o.runs}: promtool check service-discovery (waits ${o.promtoolTimeoutMs / 1000}s by design)`);
        results.promtool.push(await measure(fake, `promtool-${run}`, promCommand, env, dir, countProm));
      }
    }
  } finally {
    await fake.close();
    await rm(join(dir, 'profiles'), { recursive: true, force: true });
  }

  const summary = (ms: Measure[]) =>
    ms.length === 0
      ? undefined
      : {
          wallS: median(ms.map((m) => m.wallS)),
          cpuS: median(ms.map((m) => m.cpuS)),
          peakRssMiB: median(ms.map((m) => m.peakRssMiB)),
          discoveryS: median(ms.map((m) => m.discoveryS)),
          describeCalls: median(ms.map((m) => m.describeCalls)),
          targets: Math.min(...ms.map((m) => m.targets)),
          exitCodes: [...new Set(ms.map((m) => m.exitCode))],
        };
  const a = summary(results.ours)!;
  const b = summary(results.promtool);
  const base = summary(results.staticOnly)!;
  const ratios = b ? { cpu: a.cpuS / b.cpuS, peakRss: a.peakRssMiB / b.peakRssMiB } : undefined;

  const warnings: string[] = [];
  for (const [name, s, want] of [
    ['pprof-scraper', a, o.instances],
    ['promtool', b, o.instances],
  ] as const) {
    if (s && s.targets !== want) warnings.push(`${name} printed ${s.targets} targets, expected ${want}${name === 'promtool' ? ' (raise --promtool-timeout?)' : ''}`);
  }
  if (results.ours.some((m) => /NodeVersionSupportWarning|AWS SDK for JavaScript/.test(m.stderrTail))) warnings.push("the SDK's Node-version notice reached pprof-scraper's output");

  const row = (name: string, s: NonNullable<ReturnType<typeof summary>>): string[] => [
    name,
    String(s.targets),
    String(s.describeCalls),
    s.discoveryS.toFixed(2),
    s.wallS.toFixed(2),
    s.cpuS.toFixed(2),
    s.peakRssMiB.toFixed(0),
    s.exitCodes.join(','),
  ];
  const rows = [row('pprof-scraper targets', a), ...(b ? [row('promtool check service-discovery', b)] : []), row('(static-only dry run, no SDK)', base)];
  const header = ['', 'targets', 'calls', 'discovery s', 'wall s', 'cpu s', 'peak RSS MiB', 'exit'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const lines = [
    `EC2 discovery: ${o.instances} instances in ${Math.ceil(o.instances / 1000)} pages, medians of ${o.runs} run(s); ${cpus().length} CPUs, Node ${process.version}`,
    fmt(header),
    ...rows.map(fmt),
  ];
  if (ratios) {
    lines.push(
      '',
      `cpu: ${ratios.cpu.toFixed(2)}x promtool's (target <= 0.5x) ${ratios.cpu <= 0.5 ? 'met' : 'MISSED'}`,
      `peak RSS: ${ratios.peakRss.toFixed(2)}x promtool's (target <= 1.25x) ${ratios.peakRss <= 1.25 ? 'met' : 'MISSED'}`,
    );
  }
  for (const w of warnings) lines.push(`warning: ${w}`);
  console.log(lines.join('\n'));

  await writeFile(
    join(dir, 'results.json'),
    JSON.stringify(
      {
        options: o,
        machine: { cpus: cpus().length, model: cpus()[0]?.model, memoryGiB: totalmem() / 1024 ** 3, node: process.version, promtool: havePromtool ? await versionOf(o.promtool, ['--version']) : undefined },
        summary: { pprofScraper: a, promtool: b, staticOnly: base, ratios },
        runs: results,
        warnings,
      },
      null,
      2,
    ) + '\n',
  );
  console.error(`ec2 bench: results in ${dir}`);
  if (warnings.length > 0) process.exitCode = 1;
}

runMain('ec2 bench', main);
