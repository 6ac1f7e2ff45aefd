/**
 * Delivery figures on this machine:
 *
 *   node --import tsx bench/delivery.ts [--profiles 5000] [--delta-runs 20] [--paced-seconds 10]
 *     [--dir <folder on the disk state_dir lives on>] [--out bench/results]
 *
 * 1. Delta computation (Pyroscope) for the real Go allocs profile with about
 *    10,000 samples (test/fixtures/allocs-10k.pb.gz) and for an ordinary one
 *    (allocs.pb.gz): time per profile in steady state, and the baseline memory
 *    one target × type keeps.
 * 2. The durable queue: profiles/s made durable (write + fdatasync, group
 *    commit) and delivered to a repository that answers at once, with 64
 *    submitters as the scrape concurrency would; CPU per profile; profiles
 *    per fdatasync. Then the load of the fleet benchmark (1,000 targets × 4
 *    types / 15 s = 267 profiles/s) paced, for CPU per profile at that rate.
 * 3. For comparison, the design not taken: one file per profile (temp,
 *    fsync, rename) on the same disk.
 */
import {mkdir, mkdtemp, open, readFile, rename, rm, writeFile} from 'node:fs/promises';
import {cpus, tmpdir, totalmem} from 'node:os';
import {join, resolve} from 'node:path';
import {parseArgs} from 'node:util';
import {gunzipSync} from 'node:zlib';
import {Profile} from 'pprof-format';
import {silentLogger} from '../src/log.js';
import {createMetrics} from '../src/metrics.js';
import {DeltaStore} from '../src/profiles/delta.js';
import type {ScrapedProfile} from '../src/profiles/profile.js';
import type {Repository, SendResult} from '../src/repositories/repository.js';
import {openSpool} from '../src/delivery/spool.js';
import {parseWhole, runMain} from './lib/flags.js';
import {FIXTURES_DIR, REPO_ROOT} from './lib/paths.js';

interface Options {
  profiles: number;
  deltaRuns: number;
  pacedSeconds: number;
  dir: string;
  outDir: string;
}

function options(): Options {
  const {values} = parseArgs({
    options: {
      profiles: {type: 'string', default: '5000'},
      'delta-runs': {type: 'string', default: '20'},
      'paced-seconds': {type: 'string', default: '10'},
      dir: {type: 'string', default: tmpdir()},
      out: {type: 'string', default: join(REPO_ROOT, 'bench', 'results')},
    },
  });
  return {
    profiles: parseWhole(values.profiles, '--profiles', 100),
    deltaRuns: parseWhole(values['delta-runs'], '--delta-runs', 2),
    pacedSeconds: parseWhole(values['paced-seconds'], '--paced-seconds', 1),
    dir: resolve(values.dir),
    outDir: resolve(values.out),
  };
}

const cpuMs = (since: NodeJS.CpuUsage): number => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};

const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length - 1) * p))]!;

// --- 1. deltas ---

interface DeltaFigures {
  fixture: string;
  samples: number;
  baselineMs: number;
  deltaMsMean: number;
  deltaMsP50: number;
  deltaMsMax: number;
  baselineBytesPerTarget: number;
  deltaSamplesSent: number;
}

async function benchDelta(file: string, runs: number): Promise<DeltaFigures> {
  const gz = await readFile(join(FIXTURES_DIR, file));
  const base = Profile.decode(gunzipSync(gz));
  const cumulative = base.sampleType.flatMap((t, i) => (['alloc_objects', 'alloc_space'].includes(base.stringTable.strings[Number(t.type)]!) ? [i] : []));
  // later scrapes of the same process: a third of the stacks allocated more
  const later: Buffer[] = [];
  for (let r = 1; r <= runs; r++) {
    const p = Profile.decode(gunzipSync(gz));
    p.sample.forEach((s, i) => {
      if (i % 3 === 0) for (const c of cumulative) s.value[c] = Number(s.value[c]) + r * (i + 1);
    });
    p.timeNanos = BigInt(p.timeNanos) + BigInt(r) * 15_000_000_000n;
    later.push(Buffer.from(p.encode()));
  }
  const store = new DeltaStore();
  let t = performance.now();
  store.compute('target/allocs', gz, 0);
  const baselineMs = performance.now() - t;
  const times: number[] = [];
  let sent = 0;
  for (const data of later) {
    t = performance.now();
    const r = store.compute('target/allocs', data, 0);
    times.push(performance.now() - t);
    if (r.kind === 'delta') sent = r.sampleCount;
  }
  const steady = times.slice(Math.min(2, times.length - 1));
  return {
    fixture: file,
    samples: base.sample.length,
    baselineMs,
    deltaMsMean: steady.reduce((a, b) => a + b, 0) / steady.length,
    deltaMsP50: pct(steady, 0.5),
    deltaMsMax: Math.max(...steady),
    baselineBytesPerTarget: store.bytes,
    deltaSamplesSent: sent,
  };
}

// --- 2. the durable queue ---

class Sink implements Repository {
  readonly kind = 'directory' as const;
  delivered = 0;
  #waiters: (() => void)[] = [];
  constructor(readonly name: string) {}
  async send(): Promise<SendResult> {
    this.delivered++;
    for (const w of this.#waiters.splice(0)) w();
    return {status: 'ok'};
  }
  async until(n: number): Promise<void> {
    while (this.delivered < n) await new Promise<void>((r) => this.#waiters.push(r));
  }
  async close(): Promise<void> {}
}

interface QueueFigures {
  scenario: string;
  profileBytes: number;
  repositories: number;
  profiles: number;
  seconds: number;
  durablePerSecond: number;
  deliveredPerSecond: number;
  cpuMsPerProfile: number;
  profilesPerSync: number;
  submitP99Ms: number;
}

function profileOf(i: number, data: Buffer): ScrapedProfile {
  return {targetId: `t${i % 1000}`, service: `svc-${i % 50}`, type: 'heap', labels: {instance: `10.0.${(i >> 8) & 255}.${i & 255}:6060`, provider: 'static', env: 'bench'}, time: Date.now(), sampleCount: 10, url: 'http://x/debug/pprof/heap', data};
}

async function benchQueue(root: string, scenario: string, count: number, size: number, repos: number, pace: number | undefined, commitWindowMs?: number): Promise<QueueFigures> {
  const dir = await mkdtemp(join(root, 'pprof-bench-queue-'));
  const metrics = createMetrics({defaultMetrics: false});
  const spool = await openSpool(dir, {logger: silentLogger(), metrics}, commitWindowMs === undefined ? {} : {commitWindowMs});
  const sinks = Array.from({length: repos}, (_, i) => new Sink(`repo${i}`));
  const handles = new Map();
  for (const s of sinks) handles.set(s.name, await spool.attach(s, {maxBytes: 8 * 1024 ** 3, maxAgeMs: 3_600_000, policy: {initialMs: 1000, maxMs: 120_000}, timeoutMs: 10_000, parallelism: 8}));
  spool.activate(handles);
  const data = Buffer.alloc(size, 0x5a);
  const latencies: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  const submitter = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= count) return;
      if (pace !== undefined) {
        const due = t0 + (i / pace) * 1000;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const s = performance.now();
      await spool.submit(profileOf(i, data));
      latencies.push(performance.now() - s);
    }
  };
  await Promise.all(Array.from({length: 64}, submitter));
  const durableAt = performance.now();
  await Promise.all(sinks.map((s) => s.until(count)));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuMs(cpu0);
  const commits = (await metrics.spoolCommits.get()).values.find((v) => v.metricName === 'pprof_scraper_spool_commit_seconds_count')?.value ?? 0;
  await spool.close(1000);
  await rm(dir, {recursive: true, force: true});
  return {
    scenario,
    profileBytes: size,
    repositories: repos,
    profiles: count,
    seconds,
    durablePerSecond: count / ((durableAt - t0) / 1000),
    deliveredPerSecond: count / seconds,
    cpuMsPerProfile: cpu / count,
    profilesPerSync: commits > 0 ? count / commits : 0,
    submitP99Ms: pct(latencies, 0.99),
  };
}

// --- 3. one file per profile, for comparison ---

async function benchFilePerProfile(root: string, count: number, size: number): Promise<{cpuMsPerProfile: number; perSecond: number}> {
  const dir = await mkdtemp(join(root, 'pprof-bench-files-'));
  await mkdir(join(dir, 'q'), {recursive: true});
  const data = Buffer.alloc(size, 0x5a);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= count) return;
      const tmp = join(dir, 'q', `${i}.tmp`);
      const fh = await open(tmp, 'w');
      await fh.writeFile(data);
      await fh.datasync();
      await fh.close();
      await rename(tmp, join(dir, 'q', `${i}.item`));
    }
  };
  await Promise.all(Array.from({length: 64}, worker));
  const dirFh = await open(join(dir, 'q'), 'r');
  await dirFh.sync();
  await dirFh.close();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuMs(cpu0);
  await rm(dir, {recursive: true, force: true});
  return {cpuMsPerProfile: cpu / count, perSecond: count / seconds};
}

runMain('bench/delivery', async () => {
  const o = options();
  await mkdir(o.dir, {recursive: true});
  const machine = {cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGiB: totalmem() / 1024 ** 3, node: process.version, platform: process.platform, dir: o.dir};
  console.log(`delivery bench: ${machine.cpus} × ${machine.cpuModel}, Node ${machine.node}, queue folder on ${o.dir}\n`);

  const deltas: DeltaFigures[] = [];
  for (const f of ['allocs-10k.pb.gz', 'allocs.pb.gz']) deltas.push(await benchDelta(f, o.deltaRuns));
  console.log('Delta computation (decode, match, subtract, encode, gzip), one target × type:');
  console.table(
    deltas.map((d) => ({
      fixture: d.fixture,
      samples: d.samples,
      'first (baseline) ms': d.baselineMs.toFixed(1),
      'delta ms mean': d.deltaMsMean.toFixed(1),
      'delta ms p50': d.deltaMsP50.toFixed(1),
      'delta ms max': d.deltaMsMax.toFixed(1),
      'baseline KiB': (d.baselineBytesPerTarget / 1024).toFixed(1),
      'samples in delta': d.deltaSamplesSent,
    })),
  );

  const queues: QueueFigures[] = [];
  queues.push(await benchQueue(o.dir, 'flat out', o.profiles, 1200, 1, undefined));
  queues.push(await benchQueue(o.dir, 'flat out, 2 repositories', o.profiles, 1200, 2, undefined));
  queues.push(await benchQueue(o.dir, 'flat out, 64 KiB profiles', Math.min(o.profiles, 2000), 64 * 1024, 1, undefined));
  queues.push(await benchQueue(o.dir, 'flat out, no commit window', o.profiles, 1200, 1, undefined, 0));
  queues.push(await benchQueue(o.dir, 'paced 267/s (fleet bench load)', 267 * o.pacedSeconds, 1200, 1, 267));
  queues.push(await benchQueue(o.dir, 'paced 267/s, no commit window', 267 * o.pacedSeconds, 1200, 1, 267, 0));
  console.log('\nDurable queue (segment append + fdatasync per group, delivered to a repository that answers at once):');
  console.table(
    queues.map((q) => ({
      scenario: q.scenario,
      'profile B': q.profileBytes,
      repos: q.repositories,
      profiles: q.profiles,
      'durable/s': Math.round(q.durablePerSecond),
      'delivered/s': Math.round(q.deliveredPerSecond),
      'CPU ms/profile': q.cpuMsPerProfile.toFixed(3),
      'profiles/fdatasync': q.profilesPerSync.toFixed(1),
      'submit p99 ms': q.submitP99Ms.toFixed(1),
    })),
  );

  const files = await benchFilePerProfile(o.dir, Math.min(o.profiles, 2000), 1200);
  console.log(`\nFor comparison, one file per profile (temp + fdatasync + rename), 64 at a time: ${files.cpuMsPerProfile.toFixed(3)} CPU ms/profile, ${Math.round(files.perSecond)} profiles/s`);

  await mkdir(o.outDir, {recursive: true});
  const out = join(o.outDir, `delivery-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(out, JSON.stringify({startedAt: new Date().toISOString(), machine, options: o, deltas, queues, filePerProfile: files}, null, 2) + '\n');
  console.log(`\nwritten: ${out}`);
});
