/**
 * The benchmark: the daemon against the bare relay, on the same simulated
 * fleet and the same sink, one after the other, for each fleet size.
 *
 *   node --import tsx bench/run.ts [--targets 100,1000] [--duration 90s] [--warmup 20s]
 *     [--interval 15s] [--types heap,goroutine,block,mutex] [--concurrency 64]
 *     [--port 6060] [--timeout 10s] [--cpu-seconds 10] [--only daemon|relay]
 *     [--node-options "--max-semi-space-size=2"] [--daemon dist/cli/index.js] [--out bench/results]
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
import {parseDuration, parseList, parseWhole, runMain, UsageError} from './lib/flags.js';
import {FLEET_TYPES, isFleetType, MAX_TARGETS, targetHost} from './lib/layout.js';
import type {FleetType} from './lib/layout.js';
import {DAEMON_NODE_FLAGS, REPO_ROOT} from './lib/paths.js';
import {histogramQuantile, parsePrometheus, sumOf} from './lib/prometheus.js';
import type {Exposition} from './lib/prometheus.js';
import {cpuSeconds, peakRssKiB} from './lib/proc.js';

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

/** One implementation's figures for one fleet size. */
interface Measurement {
  impl: 'daemon' | 'relay';
  targets: number;
  error?: string;
  window?: {
    seconds: number;
    cpuSeconds: number;
    profilesReceived: number;
    profilesExpected: number;
    cpuMsPer1000Profiles: number | null;
    fleetCpuSeconds: number;
    sinkCpuSeconds: number;
    skippedTicks: number | null;
  };
  peakRssMiB?: number;
  latenessSeconds?: {p50: number | null; p99: number | null};
  lifetime?: {
    scrapedOk: number | null;
    served: number;
    received: number;
    lostScrapedMinusReceived: number | null;
    lostServedMinusReceived: number;
    sinkRejected: Record<string, number>;
    fleetCpuConflicts: number;
  };
  /** Daemon: its own metrics at the end of the window; relay: its JSON line. */
  own?: unknown;
}

const NODE = process.execPath;

function parseOptions(): Options {
  const {values} = parseArgs({
    options: {
      targets: {type: 'string', default: '100,1000'},
      duration: {type: 'string', default: '90s'},
      warmup: {type: 'string', default: '20s'},
      interval: {type: 'string', default: '15s'},
      types: {type: 'string', default: 'heap,goroutine,block,mutex'},
      concurrency: {type: 'string', default: '64'},
      port: {type: 'string', default: '6060'},
      timeout: {type: 'string', default: '10s'},
      'cpu-seconds': {type: 'string', default: '10'},
      only: {type: 'string'},
      'node-options': {type: 'string', default: ''},
      daemon: {type: 'string', default: 'dist/cli/index.js'},
      out: {type: 'string', default: 'bench/results'},
    },
  });
  const types = parseList(values.types, '--types');
  for (const t of types) if (!isFleetType(t)) throw new UsageError(`--types: ${JSON.stringify(t)} is not one the fleet serves (${FLEET_TYPES.join(', ')})`);
  if (values.only !== undefined && values.only !== 'daemon' && values.only !== 'relay') throw new UsageError(`--only: ${JSON.stringify(values.only)} is not daemon or relay`);
  return {
    targets: parseList(values.targets, '--targets').map((t) => parseWhole(t, '--targets', 1, MAX_TARGETS)),
    durationMs: parseDuration(values.duration, '--duration'),
    warmupMs: parseDuration(values.warmup, '--warmup'),
    intervalMs: parseDuration(values.interval, '--interval'),
    types: types as FleetType[],
    concurrency: parseWhole(values.concurrency, '--concurrency', 1),
    port: parseWhole(values.port, '--port', 1, 65535),
    timeoutMs: parseDuration(values.timeout, '--timeout'),
    cpuSeconds: parseWhole(values['cpu-seconds'], '--cpu-seconds', 1),
    only: values.only,
    nodeOptions: values['node-options'],
    daemonCli: resolve(REPO_ROOT, values.daemon),
    outDir: resolve(REPO_ROOT, values.out),
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
    repositories: [{profefe: {url: sinkUrl}}],
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

/** Types that end up at profefe: allocs is not sent there (see DESIGN.md). */
function sentTypes(types: readonly FleetType[]): FleetType[] {
  return types.filter((t) => (PROFEFE_TYPES as readonly string[]).includes(t));
}

function sumServed(stats: FleetStats, types: readonly FleetType[]): number {
  return types.reduce((a, t) => a + (stats.served[t] ?? 0), 0);
}

interface Peers {
  fleet: Child;
  fleetStats: string;
  sink: Child;
  sinkUrl: string;
}

async function measure(impl: 'daemon' | 'relay', n: number, opts: Options, peers: Peers, runDir: string): Promise<Measurement> {
  const result: Measurement = {impl, targets: n};
  const sent = sentTypes(opts.types);
  await getJson(`${peers.fleetStats}/reset`, 'POST');
  await getJson(`${peers.sinkUrl}/reset`, 'POST');

  let child: Child | undefined;
  let stateDir: string | undefined;
  let metricsUrl = '';
  try {
    const tailMs = 5_000;
    if (impl === 'daemon') {
      if (!existsSync(opts.daemonCli)) throw new Error(`${opts.daemonCli} not found: build the daemon first (npm run build)`);
      stateDir = await mkdtemp(join(tmpdir(), 'pprof-scraper-bench-'));
      const listen = `127.0.0.1:${await freePort()}`;
      metricsUrl = `http://${listen}/metrics`;
      const configPath = join(runDir, `daemon-${n}.yaml`);
      await writeFile(configPath, daemonConfig(opts, n, peers.sinkUrl, listen, join(stateDir, 'state')));
      child = startChild('daemon', NODE, [...DAEMON_NODE_FLAGS, opts.daemonCli, 'run', '--config', configPath], {
        cwd: REPO_ROOT,
        env: opts.nodeOptions ? {...process.env, NODE_OPTIONS: opts.nodeOptions} : process.env,
        logPath: join(runDir, `daemon-${n}.log`),
      });
      await waitForMetrics(child, metricsUrl, 30_000);
    } else {
      const relayJs = await transpileForNode(join(REPO_ROOT, 'bench', 'relay.ts'));
      const args = [relayJs, '--targets', String(n), '--types', opts.types.join(','), '--interval', durationText(opts.intervalMs),
        '--duration', durationText(opts.warmupMs + opts.durationMs + tailMs), '--sink', peers.sinkUrl, '--concurrency', String(opts.concurrency),
        '--port', String(opts.port), '--timeout', durationText(opts.timeoutMs), '--cpu-seconds', String(opts.cpuSeconds)];
      child = startChild('relay', NODE, args, {cwd: REPO_ROOT, logPath: join(runDir, `relay-${n}.log`)});
    }
    const pid = child.pid;

    await sleep(opts.warmupMs);
    if (!child.isRunning()) throw new Error(`${impl} exited during warm-up; stderr: ${child.stderrTail() || '(empty)'}`);
    const before = {
      cpu: cpuSeconds(pid),
      fleetCpu: cpuSeconds(peers.fleet.pid),
      sinkCpu: cpuSeconds(peers.sink.pid),
      sink: await getJson<SinkStats>(`${peers.sinkUrl}/stats`),
      metrics: impl === 'daemon' ? await metrics(metricsUrl) : undefined,
      at: Date.now(),
    };
    await sleep(opts.durationMs);
    if (!child.isRunning()) throw new Error(`${impl} exited during the measurement; stderr: ${child.stderrTail() || '(empty)'}`);
    const after = {
      cpu: cpuSeconds(pid),
      fleetCpu: cpuSeconds(peers.fleet.pid),
      sinkCpu: cpuSeconds(peers.sink.pid),
      sink: await getJson<SinkStats>(`${peers.sinkUrl}/stats`),
      metrics: impl === 'daemon' ? await metrics(metricsUrl) : undefined,
      at: Date.now(),
      peakRssKiB: peakRssKiB(pid),
    };

    let scrapedOk: number | null;
    let skipped: number | null;
    if (impl === 'daemon') {
      const okOf = (m: Exposition): number | null => {
        let total: number | null = null;
        for (const t of sent) {
          const v = sumOf(m, 'pprof_scraper_scrapes_total', {type: t, result: 'success'});
          if (v !== null) total = (total ?? 0) + v;
        }
        return total;
      };
      if (!before.metrics || !after.metrics) throw new Error('unreachable: daemon metrics not taken');
      const skippedBefore = sumOf(before.metrics, 'pprof_scraper_skipped_ticks_total');
      const skippedAfter = sumOf(after.metrics, 'pprof_scraper_skipped_ticks_total');
      skipped = skippedAfter === null ? null : skippedAfter - (skippedBefore ?? 0);
      result.latenessSeconds = {
        p50: histogramQuantile(before.metrics, after.metrics, 'pprof_scraper_schedule_lateness_seconds', 0.5),
        p99: histogramQuantile(before.metrics, after.metrics, 'pprof_scraper_schedule_lateness_seconds', 0.99),
      };
      // Profiles still in the durable queue are on disk, not lost: let it drain
      // (up to 30 s) so "lost" below counts only what really went missing.
      for (let waited = 0; waited < 30_000; waited += 250) {
        if ((sumOf(await metrics(metricsUrl), 'pprof_scraper_queue_length') ?? 0) === 0) break;
        await sleep(250);
      }
      // Taken last thing before the stop: what the daemon says it scraped over its life.
      const final = await metrics(metricsUrl);
      scrapedOk = okOf(final);
      result.own = {
        scrapesTotal: final.samples.filter((s) => s.name === 'pprof_scraper_scrapes_total'),
        profilesSentTotal: final.samples.filter((s) => s.name === 'pprof_scraper_profiles_sent_total'),
      };
      await child.stop(30_000);
    } else {
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
      scrapedOk = own.scraped;
      // The relay counts over its whole run; a skip only happens on a slow target, which this fleet is not.
      skipped = own.skipped;
      result.latenessSeconds = {
        p50: own.latenessMs.p50 === null ? null : own.latenessMs.p50 / 1000,
        p99: own.latenessMs.p99 === null ? null : own.latenessMs.p99 / 1000,
      };
    }

    // Let the sink finish answering the last posts before reading lifetime totals.
    await sleep(500);
    const sinkEnd = await getJson<SinkStats>(`${peers.sinkUrl}/stats`);
    const fleetEnd = await getJson<FleetStats>(`${peers.fleetStats}/stats`);
    const received = after.sink.total - before.sink.total;
    const seconds = (after.at - before.at) / 1000;
    const cpu = after.cpu - before.cpu;
    const served = sumServed(fleetEnd, sent);
    result.window = {
      seconds,
      cpuSeconds: cpu,
      profilesReceived: received,
      profilesExpected: Math.round((n * sent.length * seconds * 1000) / opts.intervalMs),
      cpuMsPer1000Profiles: received > 0 ? (cpu * 1000) / (received / 1000) : null,
      fleetCpuSeconds: after.fleetCpu - before.fleetCpu,
      sinkCpuSeconds: after.sinkCpu - before.sinkCpu,
      skippedTicks: skipped,
    };
    result.peakRssMiB = after.peakRssKiB / 1024;
    result.lifetime = {
      scrapedOk,
      served,
      received: sinkEnd.total,
      lostScrapedMinusReceived: scrapedOk === null ? null : scrapedOk - sinkEnd.total,
      lostServedMinusReceived: served - sinkEnd.total,
      sinkRejected: sinkEnd.rejected,
      fleetCpuConflicts: fleetEnd.cpuConflicts,
    };
  } catch (err) {
    result.error = (err as Error).message;
  } finally {
    await child?.stop(30_000);
    if (stateDir) await rm(stateDir, {recursive: true, force: true});
  }
  return result;
}

async function startPeers(n: number, opts: Options, runDir: string): Promise<Peers> {
  const fleetArgs = ['--import', 'tsx', join(REPO_ROOT, 'bench', 'fleet.ts'), '--targets', String(n), '--port', String(opts.port)];
  if (opts.types.includes('cpu')) fleetArgs.push('--cpu-delay');
  const fleet = startChild('fleet', NODE, fleetArgs, {cwd: REPO_ROOT, logPath: join(runDir, `fleet-${n}.log`)});
  const sink = startChild('sink', NODE, ['--import', 'tsx', join(REPO_ROOT, 'bench', 'sink.ts')], {cwd: REPO_ROOT, logPath: join(runDir, `sink-${n}.log`)});
  try {
    const stats = await fleet.waitForLine(/^stats on (\S+)$/, 120_000);
    await fleet.waitForLine(/^ready$/, 120_000);
    const listening = await sink.waitForLine(/^listening on (\S+)$/, 30_000);
    return {fleet, fleetStats: `http://${stats[1]}`, sink, sinkUrl: `http://${listening[1]}`};
  } catch (err) {
    await Promise.all([fleet.stop(), sink.stop()]);
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
      r.impl,
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

  const results: Measurement[] = [];
  for (const n of opts.targets) {
    console.error(`bench: ${n} targets: starting fleet and sink`);
    const peers = await startPeers(n, opts, runDir);
    try {
      for (const impl of ['daemon', 'relay'] as const) {
        if (opts.only && opts.only !== impl) continue;
        console.error(`bench: ${n} targets: ${impl}: warm-up ${durationText(opts.warmupMs)}, then ${durationText(opts.durationMs)} measured`);
        const m = await measure(impl, n, opts, peers, runDir);
        if (m.error) console.error(`bench: ${n} targets: ${impl}: ${m.error}`);
        results.push(m);
      }
    } finally {
      await Promise.all([peers.fleet.stop(), peers.sink.stop()]);
    }
  }

  printTable(results);
  const doc = {
    startedAt: stamp,
    options: {...opts, daemonCli: relative(REPO_ROOT, opts.daemonCli), outDir: relative(REPO_ROOT, opts.outDir)},
    machine: {cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGiB: totalmem() / 2 ** 30, node: process.version, platform: process.platform},
    results,
  };
  const file = join(runDir, 'results.json');
  await writeFile(file, `${JSON.stringify(doc, null, 2)}\n`);
  console.error(`bench: results in ${relative(REPO_ROOT, file)} (logs and configs beside it)`);
}

runMain('bench', main);
