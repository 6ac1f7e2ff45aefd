/**
 * Memory of the daemon with a sample bomb among good targets: one target
 * serves a gzip of ~35 KB holding 3,000,000 samples (24 MB of protobuf), N
 * others serve the real heap and goroutine fixtures; a Pyroscope repository
 * (which decodes every profile for its deltas) and a directory repository.
 *
 *   npm run build
 *   node --import tsx bench/sample-bomb.ts [--targets 20] [--duration 40s] [--interval 5s]
 *     [--modes bounded,unbounded] [--bomb-samples 3000000] [--bomb-distinct]
 *     [--daemon dist/cli/index.js] [--daemon-without-limits] [--out bench/results]
 *
 * Each mode runs two phases, each its own daemon process:
 * 1. scrape: a fresh state_dir, the targets scraped every --interval for
 *    --duration; peak RSS (VmHWM) and the largest VmRSS seen each second.
 * 2. restart: a state_dir whose Pyroscope queue already holds the bomb, as a
 *    daemon without structure limits leaves it (made by a producer daemon
 *    with the limits raised out of reach and Pyroscope unreachable, killed
 *    with SIGKILL once it has queued the bomb); the daemon starts on it with
 *    Pyroscope up and runs for --duration.
 * --bomb-distinct makes the bomb's samples cumulative (alloc_space, so
 * Pyroscope computes deltas of it) and all distinct (a label each), the
 * costliest shape for a profile within the limits: with --bomb-samples
 * 1000000 it sits exactly at the default scrape.max_samples.
 * Modes: `bounded` is the config's defaults (scrape.max_samples and the rest);
 * `unbounded` raises every structure limit out of reach, which is how the
 * daemon behaved before it had them. To measure a build from before the
 * limits existed, give it as --daemon with --daemon-without-limits: its
 * configs then carry no limit keys (it would refuse them). Goal: peak RSS under 300 MiB in both
 * phases when bounded.
 *
 * The targets and the Pyroscope endpoint live in this process. The endpoint
 * reads each push request with the test fake's wire reader but does not
 * decode the profiles in it, so a bomb that gets through costs the daemon,
 * not this process (which also serves the targets). Linux only (/proc).
 */
import {existsSync} from 'node:fs';
import {mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises';
import {createServer} from 'node:http';
import type {Server} from 'node:http';
import type {AddressInfo} from 'node:net';
import {cpus, tmpdir, totalmem} from 'node:os';
import {join, relative, resolve} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {parseArgs} from 'node:util';
import {gzipSync} from 'node:zlib';
import {request} from 'undici';
import {stringify} from 'yaml';
import {decodePushRequest} from '../test/helpers/pyroscope-fake.js';
import {bombProfile, sampleBomb} from '../test/helpers/sample-bomb.js';
import {startChild} from './lib/child.js';
import type {Child} from './lib/child.js';
import {parseDuration, parseList, parseWhole, runMain, UsageError} from './lib/flags.js';
import {DAEMON_NODE_FLAGS, FIXTURES_DIR, REPO_ROOT} from './lib/paths.js';
import {peakRssKiB, rssKiB} from './lib/proc.js';
import {parsePrometheus} from './lib/prometheus.js';

const NODE = process.execPath;
const MODES = ['bounded', 'unbounded'] as const;
type Mode = (typeof MODES)[number];
const GOAL_MIB = 300;
const OUT_OF_REACH = 1_000_000_000_000;

interface Options {
  targets: number;
  durationMs: number;
  intervalMs: number;
  modes: Mode[];
  /** Samples in the bomb: 3,000,000 by default; 1,000,000 is a bomb just within the default scrape.max_samples. */
  bombSamples: number;
  bombDistinct: boolean;
  daemonCli: string;
  /** The daemon has no structure limits and knows no limit keys. */
  withoutLimits: boolean;
  outDir: string;
}

function options(): Options {
  const {values} = parseArgs({
    options: {
      targets: {type: 'string', default: '20'},
      duration: {type: 'string', default: '40s'},
      interval: {type: 'string', default: '5s'},
      modes: {type: 'string', default: MODES.join(',')},
      'bomb-samples': {type: 'string', default: '3000000'},
      'bomb-distinct': {type: 'boolean', default: false},
      'daemon-without-limits': {type: 'boolean', default: false},
      daemon: {type: 'string', default: 'dist/cli/index.js'},
      out: {type: 'string', default: 'bench/results'},
    },
  });
  const modes = parseList(values.modes, '--modes');
  for (const m of modes) if (!(MODES as readonly string[]).includes(m)) throw new UsageError(`--modes: ${JSON.stringify(m)} is not one of ${MODES.join(', ')}`);
  return {
    targets: parseWhole(values.targets, '--targets', 1, 250),
    durationMs: parseDuration(values.duration, '--duration'),
    intervalMs: parseDuration(values.interval, '--interval'),
    modes: modes as Mode[],
    bombSamples: parseWhole(values['bomb-samples'], '--bomb-samples', 1, 50_000_000),
    bombDistinct: values['bomb-distinct'],
    daemonCli: resolve(REPO_ROOT, values.daemon),
    withoutLimits: values['daemon-without-limits'],
    outDir: resolve(REPO_ROOT, values.out),
  };
}

interface Peers {
  /** host:port of each good target, then the bomb's. */
  good: string[];
  bomb: string;
  pyroscopeUrl: string;
  /** Profiles pushed to Pyroscope, by service. */
  pushed: Map<string, number>;
  close(): Promise<void>;
}

async function listen(server: Server, host: string): Promise<string> {
  await new Promise<void>((ok, fail) => server.once('error', fail).listen(0, host, ok));
  return `${host}:${(server.address() as AddressInfo).port}`;
}

async function startPeers(n: number, opts: Options): Promise<Peers> {
  const heap = await readFile(join(FIXTURES_DIR, 'heap.pb.gz'));
  const goroutine = await readFile(join(FIXTURES_DIR, 'goroutine.pb.gz'));
  const bombBody = opts.bombDistinct ? gzipSync(bombProfile({samples: opts.bombSamples, distinct: true, sampleType: 'alloc_space'})) : sampleBomb(opts.bombSamples);
  console.error(`sample-bomb: the bomb: ${opts.bombSamples} ${opts.bombDistinct ? 'distinct cumulative' : 'identical'} samples in ${bombBody.length} bytes of gzip`);
  const servers: Server[] = [];
  const serve = (handler: Parameters<typeof createServer>[1], host: string): Promise<string> => {
    const s = createServer(handler);
    servers.push(s);
    return listen(s, host);
  };
  const good: string[] = [];
  for (let i = 0; i < n; i++) {
    good.push(await serve((req, res) => {
      const body = req.url?.endsWith('/goroutine') ? goroutine : req.url?.endsWith('/heap') ? heap : undefined;
      if (body) res.writeHead(200, {'content-type': 'application/octet-stream'}).end(body);
      else res.writeHead(404).end();
    }, `127.0.9.${i + 1}`));
  }
  const bomb = await serve((_req, res) => res.writeHead(200, {'content-type': 'application/octet-stream'}).end(bombBody), '127.0.9.254');
  const pushed = new Map<string, number>();
  const pyroscope = await serve((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        for (const s of decodePushRequest(Buffer.concat(chunks))) {
          const service = s.labels.find(([k]) => k === 'service_name')?.[1] ?? '?';
          pushed.set(service, (pushed.get(service) ?? 0) + s.samples.length);
        }
        res.writeHead(200, {'content-type': 'application/proto'}).end();
      } catch (err) {
        res.writeHead(400).end((err as Error).message);
      }
    });
  }, '127.0.0.1');
  return {
    good,
    bomb,
    pyroscopeUrl: `http://${pyroscope}`,
    pushed,
    async close() {
      for (const s of servers) s.closeAllConnections();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    },
  };
}

async function freePort(): Promise<number> {
  const s = createServer();
  const address = await listen(s, '127.0.0.1');
  await new Promise((r) => s.close(r));
  return Number(address.split(':')[1]);
}

function configText(opts: Options, peers: Peers, mode: Mode, pyroscopeUrl: string, listenOn: string, dir: string): string {
  const limits = mode === 'unbounded' && !opts.withoutLimits
    ? {max_samples: OUT_OF_REACH, max_sample_types: OUT_OF_REACH, max_frames: OUT_OF_REACH, max_labels: OUT_OF_REACH, max_locations: OUT_OF_REACH, max_lines: OUT_OF_REACH, max_functions: OUT_OF_REACH, max_mappings: OUT_OF_REACH, max_strings: OUT_OF_REACH, max_string_table_size: OUT_OF_REACH}
    : {};
  return stringify({
    scrape: {interval: `${opts.intervalMs}ms`, timeout: '20s', ...limits},
    profiles: {heap: {path: '/debug/pprof/heap'}, goroutine: {path: '/debug/pprof/goroutine'}},
    discovery: [{static: {targets: [...peers.good.map((address, i) => ({address, service: `good-${i}`})), {address: peers.bomb, service: 'bomb'}]}}],
    // the fixtures carry the time they were recorded: no ingestion window, so every one is prepared and pushed
    repositories: [{pyroscope: {url: pyroscopeUrl, reject_older_than: '0s'}}, {directory: {path: join(dir, 'profiles')}}],
    server: {listen: listenOn},
    state_dir: join(dir, 'state'),
  });
}

interface Phase {
  mode: Mode;
  phase: 'scrape' | 'restart';
  peakRssMiB: number;
  maxRssMiB: number;
  scrapes: Record<string, number>;
  pushedGood: number;
  pushedBomb: number;
  bombFiles: number;
  /** The daemon logged the bomb's refusal by name of the limit. */
  refusedByName: boolean;
  exited?: string;
}

async function metricsOf(url: string): Promise<ReturnType<typeof parsePrometheus> | undefined> {
  try {
    const res = await request(url, {headersTimeout: 5000, bodyTimeout: 5000});
    return res.statusCode === 200 ? parsePrometheus(await res.body.text()) : (await res.body.dump(), undefined);
  } catch {
    return undefined;
  }
}

async function waitUntil(what: string, child: Child, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (!child.isRunning()) throw new Error(`the daemon exited while waiting for ${what}; stderr: ${child.stderrTail() || '(empty)'}`);
    if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms`);
    await sleep(200);
  }
}

function startDaemon(opts: Options, configPath: string, logPath: string): Child {
  return startChild('daemon', NODE, [...DAEMON_NODE_FLAGS, opts.daemonCli, 'run', '--config', configPath], {cwd: REPO_ROOT, logPath});
}

/** A state_dir whose Pyroscope queue holds the bomb: a daemon without limits queues it while Pyroscope is down, then is killed. */
async function stateWithQueuedBomb(opts: Options, peers: Peers, runDir: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pprof-scraper-bomb-'));
  const listenOn = `127.0.0.1:${await freePort()}`;
  const configPath = join(runDir, 'producer.yaml');
  await writeFile(configPath, configText(opts, peers, 'unbounded', `http://127.0.0.1:${await freePort()}`, listenOn, dir));
  const daemon = startDaemon(opts, configPath, join(runDir, 'producer.log'));
  try {
    const bombFiles = async (): Promise<boolean> => (await readdir(join(dir, 'profiles', 'bomb'), {recursive: true}).catch(() => [])).some((f) => String(f).endsWith('.pb.gz'));
    // the directory has it: the spool, which all repositories share, has it too
    await waitUntil('bomb profile queued', daemon, bombFiles, 120_000);
  } finally {
    if (daemon.isRunning()) process.kill(daemon.pid, 'SIGKILL');
    await daemon.exited;
  }
  await rm(join(dir, 'profiles'), {recursive: true, force: true});
  return dir;
}

async function runPhase(opts: Options, peers: Peers, mode: Mode, phase: Phase['phase'], dir: string, runDir: string): Promise<Phase> {
  peers.pushed.clear();
  const listenOn = `127.0.0.1:${await freePort()}`;
  const configPath = join(runDir, `${mode}-${phase}.yaml`);
  await writeFile(configPath, configText(opts, peers, mode, peers.pyroscopeUrl, listenOn, dir));
  const daemon = startDaemon(opts, configPath, join(runDir, `${mode}-${phase}.log`));
  let maxRss = 0;
  let peak = 0;
  let exited: string | undefined;
  const end = Date.now() + opts.durationMs;
  let metrics: ReturnType<typeof parsePrometheus> | undefined;
  try {
    while (Date.now() < end && daemon.isRunning()) {
      try {
        maxRss = Math.max(maxRss, rssKiB(daemon.pid));
        peak = peakRssKiB(daemon.pid);
      } catch {
        break; // gone between the check and the read
      }
      await sleep(1000);
    }
    if (daemon.isRunning()) {
      metrics = await metricsOf(`http://${listenOn}/metrics`);
      peak = peakRssKiB(daemon.pid);
    } else {
      const {code, signal} = await daemon.exited;
      exited = `exited (code ${code}, signal ${signal})`;
    }
  } finally {
    await daemon.stop(30_000);
  }
  const scrapes: Record<string, number> = {};
  for (const s of metrics?.samples ?? []) {
    if (s.name !== 'pprof_scraper_scrapes_total') continue;
    const r = s.labels['result'] ?? '?';
    scrapes[r] = (scrapes[r] ?? 0) + s.value;
  }
  const bombFiles = (await readdir(join(dir, 'profiles', 'bomb'), {recursive: true}).catch(() => [])).filter((f) => String(f).endsWith('.pb.gz')).length;
  const pushedGood = [...peers.pushed].filter(([s]) => s.startsWith('good-')).reduce((a, [, n]) => a + n, 0);
  return {
    mode,
    phase,
    peakRssMiB: Math.round(peak / 1024),
    maxRssMiB: Math.round(maxRss / 1024),
    scrapes,
    pushedGood,
    pushedBomb: peers.pushed.get('bomb') ?? 0,
    bombFiles,
    refusedByName: /scrape\.max_samples/.test(await readFile(join(runDir, `${mode}-${phase}.log`), 'utf8')),
    ...(exited ? {exited} : {}),
  };
}

function printTable(results: Phase[]): void {
  const header = ['mode', 'phase', 'peak RSS MiB', 'max RSS MiB', 'scrapes ok', 'too_large', 'pushed good', 'pushed bomb', 'bomb files', 'refused by name'];
  const rows = results.map((r) => [r.mode, r.phase, String(r.peakRssMiB), String(r.maxRssMiB), String(r.scrapes['success'] ?? 0), String(r.scrapes['too_large'] ?? 0), String(r.pushedGood), String(r.pushedBomb), String(r.bombFiles), r.refusedByName ? 'yes' : 'no'].concat(r.exited ? [r.exited] : []));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  console.log(line(header));
  for (const row of rows) console.log(line(row));
  for (const r of results.filter((x) => x.mode === 'bounded')) {
    console.log(`${r.phase}: peak RSS ${r.peakRssMiB} MiB ${r.peakRssMiB < GOAL_MIB ? '<' : '>='} ${GOAL_MIB} MiB goal`);
  }
}

async function main(): Promise<void> {
  const opts = options();
  if (!existsSync(opts.daemonCli)) throw new UsageError(`${opts.daemonCli} not found: build the daemon first (npm run build)`);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const runDir = join(opts.outDir, `sample-bomb-${stamp}`);
  await mkdir(runDir, {recursive: true});
  const peers = await startPeers(opts.targets, opts);
  const results: Phase[] = [];
  const dirs: string[] = [];
  try {
    for (const mode of opts.modes) {
      console.error(`sample-bomb: ${mode}: scrape, ${opts.targets} good targets and a bomb of ${opts.bombSamples} samples, ${opts.durationMs / 1000}s`);
      const fresh = await mkdtemp(join(tmpdir(), 'pprof-scraper-bomb-'));
      dirs.push(fresh);
      results.push(await runPhase(opts, peers, mode, 'scrape', fresh, runDir));
      console.error(`sample-bomb: ${mode}: restart on a state_dir with the bomb queued for Pyroscope`);
      const queued = await stateWithQueuedBomb(opts, peers, runDir);
      dirs.push(queued);
      results.push(await runPhase(opts, peers, mode, 'restart', queued, runDir));
    }
  } finally {
    await peers.close();
    await Promise.all(dirs.map((d) => rm(d, {recursive: true, force: true})));
  }
  printTable(results);
  const file = join(runDir, 'results.json');
  const machine = {cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGiB: totalmem() / 2 ** 30, node: process.version};
  await writeFile(file, `${JSON.stringify({startedAt: stamp, options: {...opts, daemonCli: relative(REPO_ROOT, opts.daemonCli), outDir: relative(REPO_ROOT, opts.outDir)}, machine, results}, null, 2)}\n`);
  console.error(`sample-bomb: results in ${relative(REPO_ROOT, file)} (logs and configs beside it)`);
}

runMain('sample-bomb', main);
