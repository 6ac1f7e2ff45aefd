/**
 * The benchmark: the daemon against the bare relay, on the same simulated
 * fleet and the same sink, one after the other, for each fleet size.
 *
 *   node --import tsx bench/run.ts [--targets 100,1000] [--duration 90s] [--warmup 20s]
 *     [--interval 15s] [--types heap,goroutine,block,mutex] [--concurrency 64]
 *     [--port 6060] [--timeout 10s] [--cpu-seconds 10] [--only daemon|relay]
 *     [--node-options "--max-semi-space-size=2"] [--daemon dist/cli/index.js] [--out bench/results]
 *     [--repository profefe|pyroscope] [--restart-at 60s] [--soak 60m] [--sample-every 10s] [--check]
 *
 * See bench/README.md for what is measured and how.
 */
import {existsSync} from 'node:fs';
import {mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {createServer} from 'node:net';
import {cpus, tmpdir, totalmem} from 'node:os';
import {dirname, join, relative, resolve} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {parseArgs} from 'node:util';
import ts from 'typescript';
import {request} from 'undici';
import {stringify} from 'yaml';
import {PROFEFE_TYPES} from '../test/helpers/profefe-contract.js';
import {liveChildren, startChild} from './lib/child.js';
import type {Child} from './lib/child.js';
import {overTimePlot, scalePlot} from './lib/figures.js';
import {parseDuration, parseList, parseWhole, runMain, UsageError} from './lib/flags.js';
import {FLEET_TYPES, isFleetType, MAX_TARGETS, targetHost} from './lib/layout.js';
import type {FleetType} from './lib/layout.js';
import {DAEMON_NODE_FLAGS, REPO_ROOT} from './lib/paths.js';
import {histogramQuantile, parsePrometheus, sumOf} from './lib/prometheus.js';
import type {Exposition} from './lib/prometheus.js';
import {cpuSeconds, dirBytes, peakRssKiB} from './lib/proc.js';
import type {Measurement, Repository, ResultsDoc} from './lib/results.js';
import {growthAfter, Sampler} from './lib/sampler.js';

interface Options {
  targets: number[];
  durationMs: number;
  warmupMs: number;
  intervalMs: number;
  types: FleetType[];
  concurrency: number;
  port: number;
  timeoutMs: number;
  cpuSeconds: number;
  only: 'daemon' | 'relay' | undefined;
  /** NODE_OPTIONS for the daemon alone, to try V8 settings. */
  nodeOptions: string;
  daemonCli: string;
  outDir: string;
  repository: Repository;
  /** Into the measured window: SIGTERM the daemon and start it again on the same state_dir. */
  restartAtMs: number | null;
  /** A soak: the measured window is this long, daemon only, RSS and fds followed. */
  soakMs: number | null;
  sampleEveryMs: number;
  /** Exit 1 on a crash, a lost or refused profile, or nothing received (never on a time). */
  check: boolean;
}

interface FleetStats {
  total: number;
  served: Record<string, number>;
  cpuConflicts: number;
  notFound: number;
}

interface SinkStats {
  total: number;
  bytes: number;
  received: Record<string, number>;
  rejected: Record<string, number>;
}

const NODE = process.execPath;
/** Targets per fleet process: each holds a listener and a connection per target, within a descriptor limit of 20,000. */
const FLEET_SHARD = 4000;

function parseOptions(): Options {
  const {values} = parseArgs({
    options: {
      targets: {type: 'string'},
      duration: {type: 'string', default: '90s'},
      warmup: {type: 'string'},
      interval: {type: 'string', default: '15s'},
      types: {type: 'string'},
      concurrency: {type: 'string', default: '64'},
      port: {type: 'string', default: '6060'},
      timeout: {type: 'string', default: '10s'},
      'cpu-seconds': {type: 'string', default: '10'},
      only: {type: 'string'},
      'node-options': {type: 'string', default: ''},
      daemon: {type: 'string', default: 'dist/cli/index.js'},
      out: {type: 'string', default: 'bench/results'},
      repository: {type: 'string', default: 'profefe'},
      'restart-at': {type: 'string'},
      soak: {type: 'string'},
      'sample-every': {type: 'string', default: '10s'},
      check: {type: 'boolean', default: false},
    },
  });
  const repository = values.repository;
  if (repository !== 'profefe' && repository !== 'pyroscope') throw new UsageError(`--repository: ${JSON.stringify(repository)} is not profefe or pyroscope`);
  const types = parseList(values.types ?? (repository === 'pyroscope' ? 'allocs,block,mutex' : 'heap,goroutine,block,mutex'), '--types');
  for (const t of types) if (!isFleetType(t)) throw new UsageError(`--types: ${JSON.stringify(t)} is not one the fleet serves (${FLEET_TYPES.join(', ')})`);
  if (values.only !== undefined && values.only !== 'daemon' && values.only !== 'relay') throw new UsageError(`--only: ${JSON.stringify(values.only)} is not daemon or relay`);
  const soakMs = values.soak === undefined ? null : parseDuration(values.soak, '--soak');
  // the relay posts what it scraped to profefe's API: it has no Pyroscope push, and no deltas to compute
  if ((repository === 'pyroscope' || soakMs !== null) && values.only === 'relay') throw new UsageError('--only relay: the relay runs only against profefe, and not in a soak');
  const only = repository === 'pyroscope' || soakMs !== null || values['restart-at'] !== undefined ? 'daemon' : values.only;
  const durationMs = soakMs ?? parseDuration(values.duration, '--duration');
  const restartAtMs = values['restart-at'] === undefined ? null : parseDuration(values['restart-at'], '--restart-at');
  if (restartAtMs !== null && restartAtMs >= durationMs) throw new UsageError(`--restart-at ${values['restart-at']} must fall inside the measured window (--duration ${durationText(durationMs)})`);
  const targets = parseList(values.targets ?? (soakMs !== null ? '2000' : '100,1000'), '--targets').map((t) => parseWhole(t, '--targets', 1, MAX_TARGETS));
  return {
    targets,
    durationMs,
    warmupMs: parseDuration(values.warmup ?? (soakMs !== null ? '5m' : '20s'), '--warmup'),
    intervalMs: parseDuration(values.interval, '--interval'),
    types: types as FleetType[],
    concurrency: parseWhole(values.concurrency, '--concurrency', 1),
    port: parseWhole(values.port, '--port', 1, 65535),
    timeoutMs: parseDuration(values.timeout, '--timeout'),
    cpuSeconds: parseWhole(values['cpu-seconds'], '--cpu-seconds', 1),
    only,
    nodeOptions: values['node-options'],
    daemonCli: resolve(REPO_ROOT, values.daemon),
    outDir: resolve(REPO_ROOT, values.out),
    repository,
    restartAtMs,
    soakMs,
    sampleEveryMs: parseDuration(values['sample-every'], '--sample-every'),
    check: values.check,
  };
}

function durationText(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

async function getJson<T>(url: string, method: 'GET' | 'POST' = 'GET'): Promise<T> {
  const res = await request(url, {method, headersTimeout: 10_000, bodyTimeout: 10_000});
  const text = await res.body.text();
  if (res.statusCode >= 300) throw new Error(`${method} ${url}: HTTP ${res.statusCode}: ${text.slice(0, 200)}`);
  return (text === '' ? undefined : JSON.parse(text)) as T;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok, fail) => server.once('error', fail).listen(0, '127.0.0.1', ok));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise((ok) => server.close(ok));
  return port;
}

/**
 * Transpiles a bench entry and the relative modules it imports to plain JS
 * under node_modules/.cache (where `undici` still resolves), so the relay
 * runs as the daemon does, without tsx's loader thread in its CPU and RSS.
 */
async function transpileForNode(entry: string): Promise<string> {
  const outRoot = join(REPO_ROOT, 'node_modules', '.cache', 'pprof-scraper', 'bench-js');
  const benchRoot = join(REPO_ROOT, 'bench');
  const seen = new Set<string>();
  const visit = async (file: string): Promise<void> => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = await readFile(file, 'utf8');
    const out = ts.transpileModule(source, {
      fileName: file,
      compilerOptions: {module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true},
    });
    const target = join(outRoot, relative(benchRoot, file)).replace(/\.ts$/, '.js');
    if (relative(outRoot, target).startsWith('..')) throw new Error(`${file}: only modules under bench/ can be transpiled for the relay`);
    await mkdir(dirname(target), {recursive: true});
    await writeFile(target, out.outputText);
    for (const imp of ts.preProcessFile(source, true, true).importedFiles) {
      if (imp.fileName.startsWith('.')) await visit(resolve(dirname(file), imp.fileName.replace(/\.js$/, '.ts')));
    }
  };
  await mkdir(outRoot, {recursive: true});
  await writeFile(join(outRoot, 'package.json'), '{"type":"module"}\n');
  await visit(entry);
  return join(outRoot, relative(benchRoot, entry)).replace(/\.ts$/, '.js');
}

function daemonConfig(opts: Options, n: number, sinkUrl: string, listen: string, stateDir: string): string {
  const profiles: Record<string, {path: string; seconds?: number}> = {};
  for (const t of opts.types) profiles[t] = t === 'cpu' ? {path: '/debug/pprof/profile', seconds: opts.cpuSeconds} : {path: `/debug/pprof/${t}`};
  const config = {
    scrape: {interval: durationText(opts.intervalMs), timeout: durationText(opts.timeoutMs), concurrency: opts.concurrency},
    profiles,
    discovery: [{static: {targets: Array.from({length: n}, (_, i) => `${targetHost(i)}:${opts.port}`)}}],
    repositories: [opts.repository === 'pyroscope' ? {pyroscope: {url: sinkUrl}} : {profefe: {url: sinkUrl}}],
    server: {listen},
    state_dir: stateDir,
  };
  return stringify(config);
}

async function waitForMetrics(daemon: Child, url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!daemon.isRunning()) {
      const {code, signal} = await daemon.exited;
      throw new Error(`daemon exited (code ${code}, signal ${signal}) before serving ${url}; stderr: ${daemon.stderrTail() || '(empty)'}`);
    }
    try {
      const res = await request(url, {headersTimeout: 2000, bodyTimeout: 2000});
      await res.body.dump();
      if (res.statusCode === 200) return;
      last = `HTTP ${res.statusCode}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(250);
  }
  throw new Error(`daemon did not serve ${url} within ${timeoutMs} ms (last: ${last}); stderr: ${daemon.stderrTail() || '(empty)'}`);
}

async function metrics(url: string): Promise<Exposition> {
  const res = await request(url, {headersTimeout: 10_000, bodyTimeout: 10_000});
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`GET ${url}: HTTP ${res.statusCode}`);
  return parsePrometheus(text);
}

/**
 * Types that end up at the sink: allocs is not sent to profefe (see
 * DESIGN.md); Pyroscope files heap and allocs both as "memory" and takes
 * heap's when a target has both.
 */
function sentTypes(types: readonly FleetType[], repository: Repository): FleetType[] {
  if (repository === 'pyroscope') return types.filter((t) => t !== 'allocs' || !types.includes('heap'));
  return types.filter((t) => (PROFEFE_TYPES as readonly string[]).includes(t));
}

function sumServed(stats: FleetStats, types: readonly FleetType[]): number {
  return types.reduce((a, t) => a + (stats.served[t] ?? 0), 0);
}

interface Peers {
  /** One process per FLEET_SHARD targets. */
  fleets: Child[];
  fleetStats: string[];
  sink: Child;
  sinkUrl: string;
}

async function fleetStats(peers: Peers): Promise<FleetStats> {
  const all = await Promise.all(peers.fleetStats.map((u) => getJson<FleetStats>(`${u}/stats`)));
  const sum: FleetStats = {total: 0, served: {}, cpuConflicts: 0, notFound: 0};
  for (const s of all) {
    sum.total += s.total;
    sum.cpuConflicts += s.cpuConflicts;
    sum.notFound += s.notFound;
    for (const [t, v] of Object.entries(s.served)) sum.served[t] = (sum.served[t] ?? 0) + v;
  }
  return sum;
}

const fleetCpu = (peers: Peers): number => peers.fleets.reduce((a, f) => a + cpuSeconds(f.pid), 0);

/** Of every life of the daemon: the sum of a metric over the expositions. */
function sumOver(exps: readonly Exposition[], name: string, match: Record<string, string> = {}): number | null {
  let total: number | null = null;
  for (const e of exps) {
    const v = sumOf(e, name, match);
    if (v !== null) total = (total ?? 0) + v;
  }
  return total;
}

/** Several expositions as one: histogramQuantile and sumOf add the series up. */
function joined(exps: readonly Exposition[]): Exposition {
  return {samples: exps.flatMap((e) => e.samples), declared: new Set(exps.flatMap((e) => [...e.declared]))};
}

/**
 * The counter of delta baselines dropped to stay within memory. Looked up
 * by name (any pprof_scraper_ metric about baselines or deltas with "evict"
 * in it) so the bench keeps working while that metric is being added; null
 * when the daemon exposes none.
 */
function evictionMetric(exp: Exposition): string | undefined {
  const names = new Set([...exp.declared, ...exp.samples.map((s) => s.name)]);
  return [...names].find((n) => /^pprof_scraper_.*(delta|baseline).*evict/.test(n) || /^pprof_scraper_.*evict.*(delta|baseline)/.test(n));
}

interface Snapshot {
  cpu: number;
  fleetCpu: number;
  sinkCpu: number;
  sink: SinkStats;
  at: number;
}

async function snapshot(peers: Peers, cpu: number): Promise<Snapshot> {
  return {cpu, fleetCpu: fleetCpu(peers), sinkCpu: cpuSeconds(peers.sink.pid), sink: await getJson<SinkStats>(`${peers.sinkUrl}/stats`), at: Date.now()};
}

function windowOf(n: number, opts: Options, before: Snapshot, after: Snapshot, skipped: number | null): NonNullable<Measurement['window']> {
  const received = after.sink.total - before.sink.total;
  const seconds = (after.at - before.at) / 1000;
  const cpu = after.cpu - before.cpu;
  return {
    seconds,
    cpuSeconds: cpu,
    profilesReceived: received,
    profilesExpected: Math.round((n * sentTypes(opts.types, opts.repository).length * seconds * 1000) / opts.intervalMs),
    cpuMsPer1000Profiles: received > 0 ? (cpu * 1000) / (received / 1000) : null,
    fleetCpuSeconds: after.fleetCpu - before.fleetCpu,
    sinkCpuSeconds: after.sinkCpu - before.sinkCpu,
    skippedTicks: skipped,
  };
}

async function measureDaemon(n: number, opts: Options, peers: Peers, runDir: string): Promise<Measurement> {
  const result: Measurement = {impl: 'daemon', targets: n, repository: opts.repository};
  const sent = sentTypes(opts.types, opts.repository);
  await Promise.all(peers.fleetStats.map((u) => getJson(`${u}/reset`, 'POST')));
  await getJson(`${peers.sinkUrl}/reset`, 'POST');

  let child: Child | undefined;
  let sampler: Sampler | undefined;
  let stateDir: string | undefined;
  try {
    if (!existsSync(opts.daemonCli)) throw new Error(`${opts.daemonCli} not found: build the daemon first (npm run build)`);
    stateDir = await mkdtemp(join(tmpdir(), 'pprof-scraper-bench-'));
    const state = join(stateDir, 'state');
    const listen = `127.0.0.1:${await freePort()}`;
    const metricsUrl = `http://${listen}/metrics`;
    const configPath = join(runDir, `daemon-${n}.yaml`);
    await writeFile(configPath, daemonConfig(opts, n, peers.sinkUrl, listen, state));
    let life = 0;
    const start = async (): Promise<Child> => {
      life++;
      const c = startChild('daemon', NODE, [...DAEMON_NODE_FLAGS, opts.daemonCli, 'run', '--config', configPath], {
        cwd: REPO_ROOT,
        env: opts.nodeOptions ? {...process.env, NODE_OPTIONS: opts.nodeOptions} : process.env,
        logPath: join(runDir, life === 1 ? `daemon-${n}.log` : `daemon-${n}-${life}.log`),
      });
      await waitForMetrics(c, metricsUrl, 60_000);
      return c;
    };
    child = await start();
    sampler = new Sampler(child.pid, opts.sampleEveryMs);
    // what the daemon's earlier lives used and said, read just before each SIGTERM
    let earlierCpu = 0;
    let earlierPeakKiB = 0;
    const earlierFinals: Exposition[] = [];
    const cpuNow = (c: Child): number => earlierCpu + cpuSeconds(c.pid);

    await sleep(opts.warmupMs);
    if (!child.isRunning()) throw new Error(`daemon exited during warm-up; stderr: ${child.stderrTail() || '(empty)'}`);
    const windowFrom = sampler.secondsNow();
    const before = await snapshot(peers, cpuNow(child));
    const beforeMetrics = await metrics(metricsUrl);

    let restartFrom: {sink: SinkStats} | undefined;
    if (opts.restartAtMs !== null) {
      await sleep(opts.restartAtMs);
      if (!child.isRunning()) throw new Error(`daemon exited before the restart; stderr: ${child.stderrTail() || '(empty)'}`);
      earlierFinals.push(await metrics(metricsUrl));
      earlierCpu = cpuNow(child);
      earlierPeakKiB = Math.max(earlierPeakKiB, peakRssKiB(child.pid));
      const stoppedAt = Date.now();
      console.error(`bench: ${n} targets: daemon: SIGTERM, then start again on the same state_dir`);
      await child.stop(30_000);
      const exit = await child.exited;
      const stateDirBytesAtStop = dirBytes(state).total;
      restartFrom = {sink: await getJson<SinkStats>(`${peers.sinkUrl}/stats`)};
      child = await start();
      sampler.follow(child.pid, earlierCpu);
      result.restart = {
        atSeconds: opts.restartAtMs / 1000,
        exit: {code: exit.code, signal: exit.signal},
        downSeconds: (Date.now() - stoppedAt) / 1000,
        stateDirBytesAtStop,
        firstResetsAfter: null,
        restartResetsAfter: null,
        receivedAfter: 0,
        seriesCount: n * sent.length,
        deltasContinued: null,
      };
      await sleep(Math.max(0, before.at + opts.durationMs - Date.now()));
    } else {
      await sleep(opts.durationMs);
    }
    if (!child.isRunning()) throw new Error(`daemon exited during the measurement; stderr: ${child.stderrTail() || '(empty)'}`);
    const after = await snapshot(peers, cpuNow(child));
    const afterMetrics = joined([...earlierFinals, await metrics(metricsUrl)]);
    result.peakRssMiB = Math.max(earlierPeakKiB, peakRssKiB(child.pid)) / 1024;

    const skippedBefore = sumOf(beforeMetrics, 'pprof_scraper_skipped_ticks_total');
    const skippedAfter = sumOf(afterMetrics, 'pprof_scraper_skipped_ticks_total');
    result.latenessSeconds = {
      p50: histogramQuantile(beforeMetrics, afterMetrics, 'pprof_scraper_schedule_lateness_seconds', 0.5),
      p99: histogramQuantile(beforeMetrics, afterMetrics, 'pprof_scraper_schedule_lateness_seconds', 0.99),
    };
    result.window = windowOf(n, opts, before, after, skippedAfter === null ? null : skippedAfter - (skippedBefore ?? 0));

    // Profiles still in the durable queue are on disk, not lost: let it drain
    // (up to 30 s) so "lost" below counts only what really went missing.
    for (const until = Date.now() + 30_000; Date.now() < until;) {
      if ((sumOf(await metrics(metricsUrl), 'pprof_scraper_queue_length') ?? 0) === 0) break;
      await sleep(250);
    }
    // Taken last thing before the stop: what the daemon says it scraped over its lives.
    const last = await metrics(metricsUrl);
    const lives = [...earlierFinals, last];
    let scrapedOk: number | null = null;
    for (const t of sent) {
      const v = sumOver(lives, 'pprof_scraper_scrapes_total', {type: t, result: 'success'});
      if (v !== null) scrapedOk = (scrapedOk ?? 0) + v;
    }
    const resets = opts.repository === 'pyroscope' ? (sumOver(lives, 'pprof_scraper_delta_resets_total') ?? 0) : 0;
    if (opts.repository === 'pyroscope') {
      const name = evictionMetric(last);
      result.baselineEvictions = name === undefined ? null : sumOver(lives, name);
    }
    result.own = {
      scrapesTotal: last.samples.filter((s) => s.name === 'pprof_scraper_scrapes_total'),
      profilesSentTotal: last.samples.filter((s) => s.name === 'pprof_scraper_profiles_sent_total'),
      ...(opts.repository === 'pyroscope' ? {deltaResetsTotal: lives.map((e) => e.samples.filter((s) => s.name === 'pprof_scraper_delta_resets_total'))} : {}),
    };
    sampler.stop();
    sampler.take();
    await child.stop(30_000);
    const exit = await child.exited;
    // a daemon that SIGTERM does not end cleanly is a failure of its own
    if (exit.code !== 0) result.error = `daemon exited with code ${exit.code}, signal ${exit.signal} on SIGTERM; stderr: ${child.stderrTail() || '(empty)'}`;

    const du = dirBytes(state);
    result.stateDirBytes = du.total;
    result.stateDirBytesPerTarget = du.total / n;
    result.stateDirByEntry = du.byEntry;

    // Let the sink finish answering the last posts before reading lifetime totals.
    await sleep(500);
    let sinkEnd = await getJson<SinkStats>(`${peers.sinkUrl}/stats`);
    const served = sumServed(await fleetStats(peers), sent);
    // What a stop leaves in the durable queue is on disk, not lost: a daemon
    // with no targets on the same state_dir sends it, as the next start would.
    if (served - sinkEnd.total - resets > 0) {
      const drainConfig = join(runDir, `daemon-${n}-drain.yaml`);
      await writeFile(drainConfig, stringify({repositories: [opts.repository === 'pyroscope' ? {pyroscope: {url: peers.sinkUrl}} : {profefe: {url: peers.sinkUrl}}], server: {listen}, state_dir: state, discovery: []}));
      const drain = startChild('daemon', NODE, [...DAEMON_NODE_FLAGS, opts.daemonCli, 'run', '--config', drainConfig], {cwd: REPO_ROOT, logPath: join(runDir, `daemon-${n}-drain.log`)});
      try {
        await waitForMetrics(drain, metricsUrl, 60_000);
        // queue_length counts the backlog only once it is read: wait on the sink instead,
        // until the missing profiles are there or nothing has come for 10 s (60 s at most)
        const missing = served - sinkEnd.total - resets;
        let seen = sinkEnd.total;
        let quietSince = Date.now();
        for (const until = Date.now() + 60_000; Date.now() < until && Date.now() - quietSince < 10_000;) {
          await sleep(250);
          const total = (await getJson<SinkStats>(`${peers.sinkUrl}/stats`)).total;
          if (total >= sinkEnd.total + missing) break;
          if (total !== seen) {
            seen = total;
            quietSince = Date.now();
          }
        }
      } finally {
        await drain.stop(30_000);
      }
      await sleep(500);
      const drained = await getJson<SinkStats>(`${peers.sinkUrl}/stats`);
      result.deliveredAfterStop = drained.total - sinkEnd.total;
      sinkEnd = drained;
    }
    result.lifetime = {
      scrapedOk,
      served,
      received: sinkEnd.total,
      ...(opts.repository === 'pyroscope' ? {baselineResets: resets} : {}),
      lostScrapedMinusReceived: scrapedOk === null ? null : scrapedOk - sinkEnd.total - resets,
      lostServedMinusReceived: served - sinkEnd.total - resets,
      sinkRejected: sinkEnd.rejected,
      fleetCpuConflicts: (await fleetStats(peers)).cpuConflicts,
    };
    if (result.restart && restartFrom) {
      result.restart.receivedAfter = sinkEnd.total - restartFrom.sink.total;
      if (opts.repository === 'pyroscope') {
        result.restart.firstResetsAfter = sumOf(last, 'pprof_scraper_delta_resets_total', {reason: 'first'}) ?? 0;
        result.restart.restartResetsAfter = sumOf(last, 'pprof_scraper_delta_resets_total', {reason: 'restart'}) ?? 0;
        let scrapedAfter = 0;
        for (const t of sent) scrapedAfter += sumOf(last, 'pprof_scraper_scrapes_total', {type: t, result: 'success'}) ?? 0;
        result.restart.scrapedAfter = scrapedAfter;
        // decided only once every series was scraped again after the restart
        result.restart.deltasContinued = scrapedAfter < result.restart.seriesCount ? null : result.restart.firstResetsAfter === 0 && result.restart.receivedAfter > 0;
      }
    }
    result.samples = sampler.samples;
    const growth = growthAfter(sampler.samples, windowFrom);
    if (growth) result.growth = growth;
  } catch (err) {
    result.error = (err as Error).message;
    if (sampler) result.samples = sampler.samples;
  } finally {
    sampler?.stop();
    await child?.stop(30_000);
    if (stateDir) await rm(stateDir, {recursive: true, force: true});
  }
  return result;
}

async function measureRelay(n: number, opts: Options, peers: Peers, runDir: string): Promise<Measurement> {
  const result: Measurement = {impl: 'relay', targets: n, repository: opts.repository};
  const sent = sentTypes(opts.types, opts.repository);
  await Promise.all(peers.fleetStats.map((u) => getJson(`${u}/reset`, 'POST')));
  await getJson(`${peers.sinkUrl}/reset`, 'POST');
  let child: Child | undefined;
  try {
    const tailMs = 5_000;
    const relayJs = await transpileForNode(join(REPO_ROOT, 'bench', 'relay.ts'));
    const args = [relayJs, '--targets', String(n), '--types', opts.types.join(','), '--interval', durationText(opts.intervalMs),
      '--duration', durationText(opts.warmupMs + opts.durationMs + tailMs), '--sink', peers.sinkUrl, '--concurrency', String(opts.concurrency),
      '--port', String(opts.port), '--timeout', durationText(opts.timeoutMs), '--cpu-seconds', String(opts.cpuSeconds)];
    child = startChild('relay', NODE, args, {cwd: REPO_ROOT, logPath: join(runDir, `relay-${n}.log`)});
    const pid = child.pid;

    await sleep(opts.warmupMs);
    if (!child.isRunning()) throw new Error(`relay exited during warm-up; stderr: ${child.stderrTail() || '(empty)'}`);
    const before = await snapshot(peers, cpuSeconds(pid));
    await sleep(opts.durationMs);
    if (!child.isRunning()) throw new Error(`relay exited during the measurement; stderr: ${child.stderrTail() || '(empty)'}`);
    const after = await snapshot(peers, cpuSeconds(pid));
    result.peakRssMiB = peakRssKiB(pid) / 1024;

    // The relay stops by itself shortly after the window; it reports its own counts.
    const limit = tailMs + opts.timeoutMs + opts.cpuSeconds * 1000 + 30_000;
    const exited = await Promise.race([child.exited, sleep(limit).then(() => undefined)]);
    if (exited === undefined) throw new Error(`relay did not finish within ${limit} ms after the window`);
    const line = child.stdout().trim().split('\n').at(-1) ?? '';
    let own: {scraped: number; skipped: number; latenessMs: {p50: number | null; p99: number | null}};
    try {
      own = JSON.parse(line) as typeof own;
    } catch {
      throw new Error(`relay printed no JSON result (exit ${JSON.stringify(exited)}); stdout: ${line.slice(0, 200)}; stderr: ${child.stderrTail() || '(empty)'}`);
    }
    result.own = own;
    result.latenessSeconds = {
      p50: own.latenessMs.p50 === null ? null : own.latenessMs.p50 / 1000,
      p99: own.latenessMs.p99 === null ? null : own.latenessMs.p99 / 1000,
    };
    // The relay counts skips over its whole run; a skip only happens on a slow target, which this fleet is not.
    result.window = windowOf(n, opts, before, after, own.skipped);

    await sleep(500);
    const sinkEnd = await getJson<SinkStats>(`${peers.sinkUrl}/stats`);
    const fleetEnd = await fleetStats(peers);
    const served = sumServed(fleetEnd, sent);
    result.lifetime = {
      scrapedOk: own.scraped,
      served,
      received: sinkEnd.total,
      lostScrapedMinusReceived: own.scraped - sinkEnd.total,
      lostServedMinusReceived: served - sinkEnd.total,
      sinkRejected: sinkEnd.rejected,
      fleetCpuConflicts: fleetEnd.cpuConflicts,
    };
  } catch (err) {
    result.error = (err as Error).message;
  } finally {
    await child?.stop(30_000);
  }
  return result;
}

async function startPeers(n: number, opts: Options, runDir: string): Promise<Peers> {
  const fleets: Child[] = [];
  for (let first = 0; first < n; first += FLEET_SHARD) {
    const count = Math.min(FLEET_SHARD, n - first);
    const args = ['--import', 'tsx', join(REPO_ROOT, 'bench', 'fleet.ts'), '--targets', String(count), '--first', String(first), '--port', String(opts.port)];
    if (opts.types.includes('cpu')) args.push('--cpu-delay');
    if (opts.repository === 'pyroscope') args.push('--grow');
    const shard = first === 0 ? '' : `-${first}`;
    fleets.push(startChild('fleet', NODE, args, {cwd: REPO_ROOT, logPath: join(runDir, `fleet-${n}${shard}.log`)}));
  }
  const sink = startChild('sink', NODE, ['--import', 'tsx', join(REPO_ROOT, 'bench', 'sink.ts')], {cwd: REPO_ROOT, logPath: join(runDir, `sink-${n}.log`)});
  try {
    const fleetStatsUrls: string[] = [];
    for (const fleet of fleets) {
      const stats = await fleet.waitForLine(/^stats on (\S+)$/, 120_000);
      await fleet.waitForLine(/^ready$/, 120_000);
      fleetStatsUrls.push(`http://${stats[1]}`);
    }
    const listening = await sink.waitForLine(/^listening on (\S+)$/, 30_000);
    return {fleets, fleetStats: fleetStatsUrls, sink, sinkUrl: `http://${listening[1]}`};
  } catch (err) {
    await Promise.all([...fleets.map((f) => f.stop()), sink.stop()]);
    throw err;
  }
}

function fmt(v: number | null | undefined, digits = 0): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits);
}

function printTable(results: Measurement[]): void {
  const header = ['targets', 'impl', 'profiles', 'cpu s', 'cpu ms/1k', 'ratio', 'peak RSS MiB', 'late p50 ms', 'late p99 ms', 'skipped', 'lost scr-rcv', 'lost srv-rcv'];
  const rows: string[][] = [];
  for (const r of results) {
    const relay = results.find((x) => x.impl === 'relay' && x.targets === r.targets);
    const ratio = r.impl === 'daemon' && r.window?.cpuMsPer1000Profiles && relay?.window?.cpuMsPer1000Profiles
      ? r.window.cpuMsPer1000Profiles / relay.window.cpuMsPer1000Profiles
      : null;
    if (r.error && !r.window) {
      rows.push([String(r.targets), r.impl, `error: ${r.error.split('\n')[0]!.slice(0, 110)}`]);
      continue;
    }
    rows.push([
      String(r.targets),
      r.repository === 'pyroscope' ? `${r.impl}/pyro` : r.impl,
      fmt(r.window?.profilesReceived),
      fmt(r.window?.cpuSeconds, 2),
      fmt(r.window?.cpuMsPer1000Profiles, 0),
      ratio === null ? '' : `${ratio.toFixed(2)}x`,
      fmt(r.peakRssMiB, 1),
      fmt(r.latenessSeconds?.p50 === undefined || r.latenessSeconds.p50 === null ? null : r.latenessSeconds.p50 * 1000, 1),
      fmt(r.latenessSeconds?.p99 === undefined || r.latenessSeconds.p99 === null ? null : r.latenessSeconds.p99 * 1000, 1),
      fmt(r.window?.skippedTicks),
      fmt(r.lifetime?.lostScrapedMinusReceived),
      fmt(r.lifetime?.lostServedMinusReceived),
    ]);
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.filter((row) => row.length > 3).map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]): string => (cells.length <= 3 ? cells.join('  ') : cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
  console.log(line(header));
  for (const row of rows) console.log(line(row));
  // what the table has no column for
  for (const r of results) {
    const extra: string[] = [];
    if (r.baselineEvictions !== undefined) extra.push(`baseline evictions ${r.baselineEvictions ?? 'not exposed'}`);
    if (r.lifetime?.baselineResets !== undefined) extra.push(`baselines set ${r.lifetime.baselineResets}`);
    if (r.stateDirBytes !== undefined) extra.push(`state_dir ${(r.stateDirBytes / 1024).toFixed(0)} KiB (${fmt(r.stateDirBytesPerTarget)} B/target)`);
    if (r.restart) {
      const x = r.restart;
      extra.push(`restart at ${x.atSeconds}s: exit ${x.exit.code ?? x.exit.signal}, down ${x.downSeconds.toFixed(1)}s, scraped after ${x.scrapedAfter ?? '-'}, received after ${x.receivedAfter}` +
        (x.firstResetsAfter === null ? '' : `, baselines lost ${x.firstResetsAfter} of ${x.seriesCount} series, deltas continued: ${x.deltasContinued === null ? 'undecided (not every series scraped again)' : x.deltasContinued ? 'yes' : 'no'}`));
    }
    if (r.growth) extra.push(`RSS after warm-up ${r.growth.rssStartMiB.toFixed(0)} → ${r.growth.rssEndMiB.toFixed(0)} MiB (${r.growth.rssGrowthPercent >= 0 ? '+' : ''}${r.growth.rssGrowthPercent.toFixed(1)} %), fds ${r.growth.fdsStart.toFixed(0)} → ${r.growth.fdsEnd.toFixed(0)} (max ${r.growth.fdsMax})`);
    if (extra.length > 0) console.log(`${r.targets} ${r.impl}: ${extra.join('; ')}`);
  }
}

/** --check: what CI fails on. A crash, a profile lost or refused, nothing received; never a time. */
function failures(results: readonly Measurement[]): string[] {
  const out: string[] = [];
  for (const r of results) {
    const who = `${r.targets} targets, ${r.impl}${r.repository === 'pyroscope' ? ' (pyroscope)' : ''}`;
    if (r.error) out.push(`${who}: ${r.error.split('\n')[0]}`);
    if (r.restart && r.restart.exit.code !== 0) out.push(`${who}: exited with code ${r.restart.exit.code}, signal ${r.restart.exit.signal} on the SIGTERM of the restart`);
    if (r.lifetime && r.lifetime.lostServedMinusReceived > 0) out.push(`${who}: ${r.lifetime.lostServedMinusReceived} profiles served by the fleet never reached the sink`);
    if (r.lifetime && Object.keys(r.lifetime.sinkRejected).length > 0) out.push(`${who}: the sink refused profiles: ${JSON.stringify(r.lifetime.sinkRejected)}`);
    if (r.window && r.window.profilesReceived === 0) out.push(`${who}: the sink received nothing in the measured window`);
  }
  return out;
}

async function main(): Promise<void> {
  const opts = parseOptions();
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const runDir = join(opts.outDir, stamp);
  await mkdir(runDir, {recursive: true});
  const interrupted = async (signal: NodeJS.Signals): Promise<void> => {
    console.error(`bench: ${signal}: stopping children`);
    await Promise.all(liveChildren().map((c) => c.stop(5_000)));
    process.exit(130);
  };
  process.once('SIGINT', (s) => void interrupted(s));
  process.once('SIGTERM', (s) => void interrupted(s));
  if (opts.repository === 'pyroscope') console.error('bench: pyroscope: daemon only (the bare relay has no deltas to compute and speaks only profefe)');

  const results: Measurement[] = [];
  for (const n of opts.targets) {
    console.error(`bench: ${n} targets: starting fleet and sink`);
    const peers = await startPeers(n, opts, runDir);
    try {
      for (const impl of ['daemon', 'relay'] as const) {
        if (opts.only && opts.only !== impl) continue;
        const restart = impl === 'daemon' && opts.restartAtMs !== null ? `, restarted at ${durationText(opts.restartAtMs)} into it` : '';
        console.error(`bench: ${n} targets: ${impl}${opts.repository === 'pyroscope' ? ' (pyroscope)' : ''}: warm-up ${durationText(opts.warmupMs)}, then ${durationText(opts.durationMs)} measured${restart}`);
        const m = impl === 'daemon' ? await measureDaemon(n, opts, peers, runDir) : await measureRelay(n, opts, peers, runDir);
        if (m.error) console.error(`bench: ${n} targets: ${impl}: ${m.error}`);
        results.push(m);
      }
    } finally {
      await Promise.all([...peers.fleets.map((f) => f.stop()), peers.sink.stop()]);
    }
  }

  printTable(results);
  const doc: ResultsDoc = {
    startedAt: stamp,
    options: {...opts, daemonCli: relative(REPO_ROOT, opts.daemonCli), outDir: relative(REPO_ROOT, opts.outDir)},
    machine: {cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGiB: totalmem() / 2 ** 30, node: process.version, platform: process.platform},
    results,
  };
  if (opts.check) {
    const failed = failures(results);
    doc.check = {ok: failed.length === 0, failures: failed};
  }
  const file = join(runDir, 'results.json');
  await writeFile(file, `${JSON.stringify(doc, null, 2)}\n`);
  const scale = opts.soakMs === null ? scalePlot([doc]) : undefined;
  if (scale) await writeFile(join(runDir, 'scale.svg'), scale);
  const overTime = overTimePlot([doc], opts.soakMs === null ? 'The daemon over the run' : `Soak: ${opts.targets.join(', ')} targets for ${durationText(opts.soakMs)}`, opts.soakMs !== null);
  if (overTime) await writeFile(join(runDir, opts.soakMs === null ? 'over-time.svg' : 'soak.svg'), overTime);
  console.error(`bench: results in ${relative(REPO_ROOT, file)} (logs, configs and plots beside it)`);
  if (doc.check) {
    if (doc.check.ok) {
      console.error('bench: check passed: no crash, nothing lost or refused');
    } else {
      for (const f of doc.check.failures) console.error(`bench: check FAILED: ${f}`);
      process.exitCode = 1;
    }
  }
}

runMain('bench', main);
