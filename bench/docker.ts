/**
 * Docker discovery at host size: N labelled containers running the Go pprof
 * target in host network mode (each on its own port of 127.0.0.1), a real
 * engine (dockerd on its own socket, as the tests start it) and the daemon as
 * a child process (`node --liftoff-only --heap-growing-percent=50 dist/cli/index.js run`), the way it runs in service.
 *
 *   npm run build
 *   node --import tsx bench/docker.ts [--containers 100] [--parallel 4] [--steady 60s]
 *     [--interval 15s] [--types heap,goroutine] [--refresh 30s] [--base-port 21000] [--daemon-log-level info]
 *     [--node-options "--max-semi-space-size=1"]
 *     [--daemon dist/cli/index.js] [--out bench/results]
 *
 * Phases, each with its own daemon process, so that what one measures does
 * not weigh on the next:
 * 1. start event → live: a daemon watches the engine while the N containers
 *    start (--parallel at a time); for each, from the engine's `start` event
 *    (the engine's own timestamp) to the first poll of the daemon's /targets
 *    (every POLL_MS, or as fast as it answers) that lists it.
 * 2. one full refresh: ContainerList of the N and the target build, with the
 *    daemon's own provider code, in this process (median and max of 10).
 * 3. steady state: a daemon started on the N running containers, after one
 *    --interval of warmup, over --steady: CPU seconds (utime + stime from
 *    /proc/PID/stat) and RSS (VmRSS each second, VmHWM at the end, from
 *    /proc/PID/status) while it scrapes --types of every container every
 *    --interval; then the same for a daemon with the same N addresses as
 *    static targets: the difference is what Docker discovery costs.
 * 4. die event → gone: the steady daemon while the containers are stopped.
 * Goals: start event → live under 1 s at the median and at p90; RSS under 100 MiB.
 *
 * Needs root (dockerd), Debian's docker.io and golang-go. Linux only.
 */
import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises';
import {createServer} from 'node:net';
import {cpus, loadavg, tmpdir, totalmem} from 'node:os';
import {join, resolve} from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';
import {parseArgs} from 'node:util';
import type Dockerode from 'dockerode';
import {request} from 'undici';
import {parseConfig} from '../src/config/index.js';
import {createDockerProvider} from '../src/discovery/providers/docker.js';
import {silentLogger} from '../src/log.js';
import {buildTargets} from '../src/targets/index.js';
import {importTargetImage, runTargetContainer} from '../test/helpers/docker-image.js';
import {dockerStatus, freePort, startDockerEngine} from '../test/helpers/dockerd.js';
import type {DockerEngine} from '../test/helpers/dockerd.js';
import {startChild} from './lib/child.js';
import type {Child} from './lib/child.js';
import {parseDuration, parseList, parseWhole, runMain, UsageError} from './lib/flags.js';
import {DAEMON_NODE_FLAGS, REPO_ROOT} from './lib/paths.js';
import {cpuSeconds, peakRssKiB, rssKiB} from './lib/proc.js';

const POLL_MS = 10;
const LABEL = 'pprof.scrape=true';

interface Options {
  containers: number;
  parallel: number;
  steadyMs: number;
  intervalMs: number;
  types: string[];
  refreshMs: number;
  basePort: number;
  daemonLogLevel: string;
  /** NODE_OPTIONS for the daemons, to try V8 settings (--max-semi-space-size=1, ...). */
  nodeOptions: string;
  daemonCli: string;
  outDir: string;
}

function options(): Options {
  const {values} = parseArgs({
    options: {
      containers: {type: 'string', default: '100'},
      parallel: {type: 'string', default: '4'},
      steady: {type: 'string', default: '60s'},
      interval: {type: 'string', default: '15s'},
      types: {type: 'string', default: 'heap,goroutine'},
      refresh: {type: 'string', default: '30s'},
      'base-port': {type: 'string', default: '21000'},
      'daemon-log-level': {type: 'string', default: 'info'},
      'node-options': {type: 'string', default: ''},
      daemon: {type: 'string', default: 'dist/cli/index.js'},
      out: {type: 'string', default: 'bench/results'},
    },
  });
  const o: Options = {
    containers: parseWhole(values.containers, '--containers', 1, 1000),
    parallel: parseWhole(values.parallel, '--parallel', 1, 64),
    steadyMs: parseDuration(values.steady, '--steady'),
    intervalMs: parseDuration(values.interval, '--interval'),
    types: parseList(values.types, '--types'),
    refreshMs: parseDuration(values.refresh, '--refresh'),
    basePort: parseWhole(values['base-port'], '--base-port', 1024, 65000),
    daemonLogLevel: values['daemon-log-level'],
    nodeOptions: values['node-options'],
    daemonCli: resolve(REPO_ROOT, values.daemon),
    outDir: resolve(REPO_ROOT, values.out),
  };
  if (o.basePort + o.containers > 65535) throw new UsageError(`--base-port ${o.basePort} leaves no room for ${o.containers} ports`);
  for (const t of o.types) if (!/^(heap|allocs|goroutine|block|mutex|threadcreate)$/.test(t)) throw new UsageError(`--types: ${t} is not a profile type this bench takes (no cpu: it would dominate the CPU figure)`);
  return o;
}

function quantile(xs: number[], q: number): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });
}

async function waitFor(check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  for (const deadline = Date.now() + ms; !(await check()); ) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000}s waiting for ${what}`);
    await sleep(50);
  }
}

/** Runs fn over items, at most `parallel` at once. */
async function pool<T>(items: T[], parallel: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({length: Math.min(parallel, items.length)}, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** Engine events of the labelled containers: time (engine clock, ms) of each start and die, by container id. */
async function recordEvents(docker: Dockerode, signal: AbortSignal): Promise<{starts: Map<string, number>; dies: Map<string, number>}> {
  const starts = new Map<string, number>();
  const dies = new Map<string, number>();
  const stream = await docker.getEvents({filters: JSON.stringify({type: ['container'], event: ['start', 'die'], label: [LABEL]}), abortSignal: signal} as Dockerode.GetEventsOptions);
  let pending = '';
  stream.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    let nl: number;
    while ((nl = pending.indexOf('\n')) !== -1) {
      const e = JSON.parse(pending.slice(0, nl)) as {Action?: string; id?: string; timeNano?: number};
      pending = pending.slice(nl + 1);
      const at = Number(e.timeNano) / 1e6;
      if (e.Action === 'start' && e.id && !starts.has(e.id)) starts.set(e.id, at);
      if (e.Action === 'die' && e.id && !dies.has(e.id)) dies.set(e.id, at);
    }
  });
  stream.on('error', () => undefined);
  return {starts, dies};
}

/** Polls /targets until stop(); records when each container id was first seen and last seen. */
function pollTargets(url: string): {firstSeen: Map<string, number>; goneAt: Map<string, number>; seen: () => Set<string>; stop: () => Promise<void>; polls: () => number} {
  const firstSeen = new Map<string, number>();
  const goneAt = new Map<string, number>();
  let current = new Set<string>();
  let stopped = false;
  let polls = 0;
  const loop = (async () => {
    while (!stopped) {
      const asked = Date.now();
      try {
        const res = await request(url);
        const body = (await res.body.json()) as {targets: {labels: Record<string, string>}[]};
        const now = new Set(body.targets.map((t) => t.labels['container_id'] ?? '').filter(Boolean));
        // the answer reflects the daemon's state somewhere between asking and receiving: take the asking time
        for (const id of now) if (!firstSeen.has(id)) firstSeen.set(id, asked);
        for (const id of current) if (!now.has(id) && !goneAt.has(id)) goneAt.set(id, asked);
        current = now;
        polls++;
      } catch {
        // the daemon is starting or stopping
      }
      await sleep(POLL_MS);
    }
  })();
  return {firstSeen, goneAt, seen: () => current, polls: () => polls, stop: async () => {
    stopped = true;
    await loop;
  }};
}

interface Steady {
  seconds: number;
  cpuSeconds: number;
  cpuPercentOfOneCore: number;
  rssMiB: {mean: number; max: number; peakHwm: number};
  heapMiB: {used: number; total: number; external: number};
  scrapesOk: number;
  scrapesFailed: number;
}

interface Daemon {
  readonly child: Child;
  readonly base: string;
}

async function startDaemon(o: Options, work: string, outDir: string, name: string, yaml: string): Promise<Daemon> {
  const config = join(work, `${name}.yaml`);
  await writeFile(config, yaml);
  await writeFile(join(outDir, `${name}.yaml`), yaml);
  const port = /listen: "127\.0\.0\.1:(\d+)"/.exec(yaml)![1];
  const child = startChild(name, process.execPath, [...DAEMON_NODE_FLAGS, o.daemonCli, '--log-level', o.daemonLogLevel, 'run', '--config', config], {
    cwd: work,
    logPath: join(outDir, `${name}.log`),
    env: o.nodeOptions ? {...process.env, NODE_OPTIONS: o.nodeOptions} : process.env,
  });
  const base = `http://127.0.0.1:${port}`;
  for (const deadline = Date.now() + 60_000; ; ) {
    const ready = await request(`${base}/-/ready`).then((r) => (r.body.dump(), r.statusCode === 200), () => false);
    if (ready) return {child, base};
    if (!child.isRunning() || Date.now() > deadline) throw new Error(`${name} did not get ready: ${child.stderrTail()}`);
    await sleep(50);
  }
}

async function targetCount(base: string): Promise<number> {
  const body = (await request(`${base}/targets`).then((r) => r.body.json())) as {targets: unknown[]};
  return body.targets.length;
}

/** CPU and memory of a daemon that scrapes every container, after one interval of warmup. */
async function steadyState(o: Options, d: Daemon): Promise<Steady> {
  await waitFor(async () => (await targetCount(d.base)) === o.containers, 60_000, `${d.child.name} to see every container`);
  await sleep(o.intervalMs);
  const pid = d.child.pid;
  const cpu0 = cpuSeconds(pid);
  const t0 = Date.now();
  const rss: number[] = [];
  while (Date.now() - t0 < o.steadyMs) {
    rss.push(rssKiB(pid) / 1024);
    await sleep(1000);
  }
  const seconds = (Date.now() - t0) / 1000;
  const cpu = cpuSeconds(pid) - cpu0;
  const metrics = await request(`${d.base}/metrics`).then((r) => r.body.text());
  const sum = (re: RegExp): number => [...metrics.matchAll(re)].reduce((a, m) => a + Number(m[1]), 0);
  const gauge = (name: string): number => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(metrics)?.[1] ?? NaN) / 2 ** 20;
  return {
    seconds,
    cpuSeconds: cpu,
    cpuPercentOfOneCore: (100 * cpu) / seconds,
    rssMiB: {mean: rss.reduce((a, b) => a + b, 0) / rss.length, max: Math.max(...rss), peakHwm: peakRssKiB(pid) / 1024},
    heapMiB: {used: gauge('nodejs_heap_size_used_bytes'), total: gauge('nodejs_heap_size_total_bytes'), external: gauge('nodejs_external_memory_bytes')},
    scrapesOk: sum(/^pprof_scraper_scrapes_total\{[^}]*result="success"[^}]*\} (\d+)/gm),
    scrapesFailed: sum(/^pprof_scraper_scrapes_total\{[^}]*result="(?!success)[^"]*"[^}]*\} (\d+)/gm),
  };
}

async function main(): Promise<void> {
  const o = options();
  const status = await dockerStatus();
  if (!status.available) throw new Error(`docker bench: ${status.why}`);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const outDir = join(o.outDir, `${stamp}-docker`);
  await mkdir(outDir, {recursive: true});
  const work = await mkdtemp(join(tmpdir(), 'pps-docker-bench-'));
  let engine: DockerEngine | undefined;
  const daemons: Daemon[] = [];
  const events = new AbortController();
  try {
    console.error('docker bench: starting dockerd and importing the Go target image');
    engine = await startDockerEngine();
    await importTargetImage(engine.docker);

    const loadAtStart = loadavg();
    const ports = Array.from({length: o.containers}, (_, i) => o.basePort + i);
    for (const p of ports) {
      if (!(await portFree(p))) throw new UsageError(`127.0.0.1:${p} is in use: pick another --base-port`);
    }
    const common = `scrape: {interval: ${o.intervalMs}ms, timeout: 5s}
profiles:
${o.types.map((t) => `  ${t}: {path: /debug/pprof/${t}}`).join('\n')}
repositories:
  - directory: {path: ${join(work, 'profiles')}, retention: {max_age: 2m}}
state_dir: ${join(work, 'state')}
`;
    const dockerYaml = async (): Promise<string> => `${common}discovery:
  - docker:
      host: ${engine!.host}
      filters: {label: ["${LABEL}"]}
      refresh: ${o.refreshMs}ms
server: {listen: "127.0.0.1:${await freePort('127.0.0.1')}"}
`;

    // 1. start event -> live, polling /targets of a daemon that watches the engine
    const first = await startDaemon(o, work, outDir, 'daemon-events', await dockerYaml());
    daemons.push(first);
    const idleRss = rssKiB(first.child.pid) / 1024;
    const recorded = await recordEvents(engine.docker, events.signal);
    const poller = pollTargets(`${first.base}/targets`);
    console.error(`docker bench: starting ${o.containers} containers, ${o.parallel} at a time`);
    const started = Date.now();
    const containers: Dockerode.Container[] = [];
    await pool(ports, o.parallel, async (port) => {
      const name = `bench-${port - o.basePort}`;
      containers.push(await runTargetContainer(engine!.docker, {name, network: 'host', listen: `127.0.0.1:${port}`, labels: {'pprof.scrape': 'true', 'pprof.port': String(port), 'pprof.service': 'bench'}}));
    });
    const startSpan = (Date.now() - started) / 1000;
    const ids = containers.map((c) => c.id);
    await waitFor(() => ids.every((id) => poller.firstSeen.has(id.slice(0, 12))), 60_000, 'every container to become a target');
    const pollPeriodMs = (Date.now() - started) / Math.max(1, poller.polls());
    const toLive = ids.map((id) => poller.firstSeen.get(id.slice(0, 12))! - recorded.starts.get(id)!).filter((x) => Number.isFinite(x));
    await poller.stop();
    const afterBurstRss = rssKiB(first.child.pid) / 1024;

    // 2. one full refresh, with the daemon's code
    const parsed = parseConfig(await dockerYaml(), 'bench.yaml', {baseDir: work, env: {}});
    const provider = await createDockerProvider(parsed.config.discovery[0]!.docker!, 0, {logger: silentLogger()});
    const refreshes: number[] = [];
    let found = 0;
    for (let i = 0; i < 10; i++) {
      const t0 = performance.now();
      const discovered = await provider.refresh(AbortSignal.timeout(30_000));
      found = buildTargets(parsed.config, [{source: 0, provider: 'docker', directiveNoun: 'label', targets: discovered}]).targets.length;
      refreshes.push(performance.now() - t0);
    }
    await provider.close?.();
    await first.child.stop();

    // 3. steady state of a daemon started on the running containers (nothing polls it), then the
    //    same containers as static targets: the difference is what Docker discovery costs
    console.error(`docker bench: steady state, ${o.steadyMs / 1000}s after a ${o.intervalMs / 1000}s warmup`);
    const staticDaemon = await startDaemon(o, work, outDir, 'daemon-static', `${common}discovery:
  - static: {service: bench, targets: [${ports.map((p) => `"127.0.0.1:${p}"`).join(', ')}]}
server: {listen: "127.0.0.1:${await freePort('127.0.0.1')}"}
`);
    daemons.push(staticDaemon);
    const baseline = await steadyState(o, staticDaemon);
    await staticDaemon.child.stop();
    const steadyDaemon = await startDaemon(o, work, outDir, 'daemon-steady', await dockerYaml());
    daemons.push(steadyDaemon);
    const steady = await steadyState(o, steadyDaemon);

    // 4. die event -> gone
    console.error('docker bench: stopping the containers');
    const stopPoller = pollTargets(`${steadyDaemon.base}/targets`);
    await waitFor(() => stopPoller.polls() > 0, 10_000, 'a first poll of /targets');
    await pool(containers, o.parallel * 2, async (c) => {
      await c.stop({t: 2});
    });
    await waitFor(() => stopPoller.seen().size === 0, 60_000, 'every stopped container to leave the targets');
    const toGone = ids.map((id) => (stopPoller.goneAt.get(id.slice(0, 12)) ?? NaN) - (recorded.dies.get(id) ?? NaN)).filter((x) => Number.isFinite(x));
    await stopPoller.stop();

    const figures = {
      containers: o.containers,
      startSpanS: startSpan,
      startToLiveMs: {median: median(toLive), p90: quantile(toLive, 0.9), max: toLive.length ? Math.max(...toLive) : null, n: toLive.length},
      dieToGoneMs: {median: median(toGone), p90: quantile(toGone, 0.9), max: toGone.length ? Math.max(...toGone) : null, n: toGone.length},
      refreshMs: {median: median(refreshes), max: Math.max(...refreshes), targets: found},
      rssMiB: {idleBeforeContainers: idleRss, afterStartBurstWithPolling: afterBurstRss},
      steady,
      staticBaseline: baseline,
      pollPeriodMs,
      loadAverage: {atStart: loadAtStart, atEnd: loadavg()},
    };
    const goals = {
      startToLiveMedianUnder1s: (figures.startToLiveMs.median ?? Infinity) < 1000,
      startToLiveP90Under1s: (figures.startToLiveMs.p90 ?? Infinity) < 1000,
      rssUnder100MiB: steady.rssMiB.peakHwm < 100,
    };

    const f = (n: number | null | undefined, digits = 0): string => (n === null || n === undefined || Number.isNaN(n) ? '-' : n.toFixed(digits));
    const steadyLine = (name: string, s: Steady): string =>
      `${name.padEnd(29)}CPU ${s.cpuSeconds.toFixed(2)} s (${s.cpuPercentOfOneCore.toFixed(1)}% of a core)   RSS mean ${f(s.rssMiB.mean, 1)}, max ${f(s.rssMiB.max, 1)}, peak ${f(s.rssMiB.peakHwm, 1)} MiB   heap ${f(s.heapMiB.used, 1)}/${f(s.heapMiB.total, 1)} MiB   scrapes ok ${s.scrapesOk}, failed ${s.scrapesFailed}`;
    const lines = [
      `Docker discovery: ${o.containers} labelled containers (host network, Go pprof target), refresh ${o.refreshMs / 1000}s; ${cpus().length} CPUs, Node ${process.version}${o.nodeOptions ? ` (NODE_OPTIONS=${o.nodeOptions})` : ''}, load average ${loadAtStart.map((l) => l.toFixed(1)).join(' ')} at start`,
      '',
      `start event -> live target   median ${f(figures.startToLiveMs.median)} ms   p90 ${f(figures.startToLiveMs.p90)} ms   max ${f(figures.startToLiveMs.max)} ms   (n=${toLive.length}; ${o.containers} started in ${startSpan.toFixed(1)} s, ${o.parallel} at a time; /targets polled every ${pollPeriodMs.toFixed(0)} ms)`,
      `die event -> target gone     median ${f(figures.dieToGoneMs.median)} ms   p90 ${f(figures.dieToGoneMs.p90)} ms   max ${f(figures.dieToGoneMs.max)} ms   (n=${toGone.length})`,
      `one full refresh             median ${f(figures.refreshMs.median, 1)} ms   max ${f(figures.refreshMs.max, 1)} ms   (ContainerList + build, ${found} targets)`,
      `RSS                          ${f(idleRss, 1)} MiB before the containers; ${f(afterBurstRss, 1)} MiB after the start burst (with /targets polled)`,
      `steady state, ${(steady.seconds).toFixed(0)} s, ${o.types.join(',')} of each every ${o.intervalMs / 1000}s:`,
      steadyLine('  docker discovery', steady),
      steadyLine('  static, the same targets', baseline),
      '',
      `goal: start event -> live under 1 s at the median: ${goals.startToLiveMedianUnder1s ? 'met' : 'MISSED'}`,
      `goal: start event -> live under 1 s at p90: ${goals.startToLiveP90Under1s ? 'met' : 'MISSED'}`,
      `goal: RSS under 100 MiB (steady-state peak): ${goals.rssUnder100MiB ? 'met' : 'MISSED'}`,
    ];
    console.log(lines.join('\n'));
    await writeFile(
      join(outDir, 'results.json'),
      JSON.stringify({options: o, machine: {cpus: cpus().length, model: cpus()[0]?.model, memoryGiB: totalmem() / 1024 ** 3, node: process.version}, figures, goals}, null, 2) + '\n',
    );
    console.error(`docker bench: results in ${outDir}`);
    if (!goals.startToLiveMedianUnder1s || !goals.startToLiveP90Under1s || !goals.rssUnder100MiB) process.exitCode = 1;
  } finally {
    events.abort();
    for (const d of daemons) await d.child.stop();
    await engine?.destroy();
    await rm(work, {recursive: true, force: true});
  }
}

runMain('docker bench', main);
