/**
 * A target whose own labels can never fit a Pyroscope repository's
 * max_label_names_per_series is found when targets are built, not at every
 * send: dropped with a reason when Pyroscope is its only repository, kept for
 * the others with one line saying Pyroscope will not get it. Labels on
 * samples, known only from the profile, are still counted when one is sent.
 */
import assert from 'node:assert/strict';
import {readdir, readFile, writeFile} from 'node:fs/promises';
import {join} from 'node:path';
import {test} from 'node:test';
import {gzipSync} from 'node:zlib';
import {Label} from 'pprof-format';
import {parseConfig} from '../../src/config/index.js';
import {Daemon} from '../../src/daemon.js';
import {createMetrics} from '../../src/metrics.js';
import {createPyroscopeRepository, pyroscopeLabels} from '../../src/repositories/pyroscope.js';
import type {PyroscopeRepository} from '../../src/repositories/pyroscope.js';
import type {SendResult} from '../../src/repositories/repository.js';
import type {ScrapedProfile} from '../../src/profiles/profile.js';
import {buildTargets, targetsReport} from '../../src/targets/index.js';
import type {TargetsReport} from '../../src/targets/index.js';
import {runCli} from '../helpers/cli.js';
import {startUniqueProfileTarget, tempDir} from '../helpers/delivery.js';
import {captureLogger} from '../helpers/log.js';
import {metricSum} from '../helpers/metrics.js';
import {fixtureProfile, scrapedProfile} from '../helpers/profiles.js';
import {pyroscopeConfig, startPyroscopeFake} from '../helpers/pyroscope-fake.js';
import {staticGroups} from '../helpers/targets.js';
import {waitUntil} from '../helpers/wait.js';

/** `n` labels l00, l01, …: with instance and provider, n + 2 target labels, n + 5 series labels in Pyroscope. */
const manyLabels = (n: number): Record<string, string> => Object.fromEntries(Array.from({length: n}, (_, i) => [`l${String(i).padStart(2, '0')}`, 'v']));
const flow = (labels: Record<string, string>): string => `{${Object.entries(labels).map(([k, v]) => `${k}: "${v}"`).join(', ')}}`;

/** 33 label names where Pyroscope allows 30, the target labels named. */
const TOO_MANY = /^the series has 33 label names \(__name__, __delta__, service_name, 30 target labels \(instance, l00, l01, .*, l27, provider\)\) and Pyroscope allows 30 \(max_label_names_per_series\): drop target labels \(3 too many\), or raise max_label_names_per_series on this repository and on the server$/;

function yaml(dir: string, wide: string, narrow: string, repositories: string): string {
  return `
scrape: {interval: 1s, timeout: 5s}
profiles:
  goroutine: {path: /debug/pprof/goroutine}
discovery:
  - static:
      targets:
        - {address: "${wide}", service: wide, labels: ${flow(manyLabels(28))}}
        - {address: "${narrow}", service: narrow}
repositories:
${repositories}
server: {listen: "127.0.0.1:0"}
state_dir: ${JSON.stringify(join(dir, 'state'))}
`;
}

/** The dry run, as an operator runs it (the built CLI), as JSON and as a table. */
async function dryRun(dir: string, text: string): Promise<{json: TargetsReport; table: string}> {
  const file = join(dir, 'config.yaml');
  await writeFile(file, text);
  const json = await runCli(['targets', '--config', file, '--output', 'json']);
  assert.equal(json.code, 0, json.stderr);
  const table = await runCli(['targets', '--config', file, '--output', 'table']);
  assert.equal(table.code, 0, table.stderr);
  return {json: JSON.parse(json.stdout) as TargetsReport, table: table.stdout};
}

void test('the label names a target can never fit in Pyroscope are counted as the adapter sends them', async () => {
  const config = (labels: Record<string, string>, repositories: string): Parameters<typeof buildTargets>[0] =>
    parseConfig(`discovery:\n  - static: {targets: [{address: "10.0.0.7:6060", service: api, labels: ${flow(labels)}}]}\nrepositories:\n${repositories}`, 'test.yaml', {baseDir: '/', env: {}}).config;
  const cases: {what: string; labels: Record<string, string>; repositories: string; sent: number; notSentTo: string[]}[] = [
    // 25 + instance + provider = 27 target labels, 30 with __name__, __delta__ and service_name
    {what: 'exactly at the limit', labels: manyLabels(25), repositories: '  - pyroscope: {url: "http://p:4040"}\n  - directory: {path: ./p}', sent: 30, notSentTo: []},
    {what: 'one over', labels: manyLabels(26), repositories: '  - pyroscope: {url: "http://p:4040"}\n  - directory: {path: ./p}', sent: 31, notSentTo: ['pyroscope']},
    {what: 'empty values are not sent, so not counted', labels: {...manyLabels(25), empty: '', blank: ''}, repositories: '  - pyroscope: {url: "http://p:4040"}\n  - directory: {path: ./p}', sent: 30, notSentTo: []},
    {what: 'a renamed label (service_name goes as service_name_2) counts once', labels: {...manyLabels(25), service_name: 'x'}, repositories: '  - pyroscope: {url: "http://p:4040"}\n  - directory: {path: ./p}', sent: 31, notSentTo: ['pyroscope']},
    {what: '0 is no limit', labels: manyLabels(40), repositories: '  - pyroscope: {url: "http://p:4040", max_label_names_per_series: 0}\n  - directory: {path: ./p}', sent: 45, notSentTo: []},
    {
      what: 'only the Pyroscope whose limit is exceeded',
      labels: manyLabels(30),
      repositories: '  - pyroscope: {name: small, url: "http://p:4040"}\n  - pyroscope: {name: large, url: "http://q:4040", max_label_names_per_series: 40}',
      sent: 35,
      notSentTo: ['small'],
    },
  ];
  for (const c of cases) {
    const cfg = config(c.labels, c.repositories);
    const built = buildTargets(cfg, await staticGroups(cfg));
    assert.equal(built.dropped.length, 0, c.what);
    const [target] = built.targets;
    assert.deepEqual((target?.notSentTo ?? []).map((n) => n.repository), c.notSentTo, c.what);
    // what the builder counts is what the adapter sends
    assert.equal(pyroscopeLabels('goroutine', target!.service, target!.labels).length, c.sent, c.what);
  }
});

void test('a target whose labels never fit the only repository, a Pyroscope, is dropped when targets are built: the dry run shows why, the daemon says so once and never scrapes it', {timeout: 60_000}, async () => {
  const wide = await startUniqueProfileTarget('goroutine.pb.gz');
  const narrow = await startUniqueProfileTarget('goroutine.pb.gz');
  const pyroscope = await startPyroscopeFake();
  const {dir, cleanup} = await tempDir('pprof-label-limit-');
  const {logger, records: lines} = captureLogger();
  const daemon = new Daemon({logger, metrics: createMetrics({defaultMetrics: false})});
  const text = yaml(dir, wide.address, narrow.address, `  - pyroscope: {url: "${pyroscope.url}"}`);
  try {
    const config = parseConfig(text, 'test.yaml', {baseDir: dir}).config;
    const built = buildTargets(config, await staticGroups(config));
    assert.deepEqual(built.targets.map((t) => t.service), ['narrow']);
    assert.equal(built.dropped.length, 1);
    assert.equal(built.dropped[0]!.address, wide.address);
    const reason = built.dropped[0]!.reason;
    assert.ok(reason.startsWith('no repository can take its profiles: Pyroscope repository pyroscope: '), reason);
    assert.match(reason.slice('no repository can take its profiles: Pyroscope repository pyroscope: '.length), TOO_MANY);

    const dry = await dryRun(dir, text);
    assert.deepEqual(dry.json.dropped.map((d) => d.reason), [reason]);
    assert.deepEqual(dry.json.targets.map((t) => t.service), ['narrow']);
    assert.ok(dry.table.includes('1 dropped:') && dry.table.includes(reason), dry.table);

    await daemon.apply(parseConfig(text, 'test.yaml', {baseDir: dir}));
    await pyroscope.waitFor(3, 20_000);
    assert.equal(wide.served.length, 0, 'a dropped target is never scraped');
    assert.ok(pyroscope.received.every((s) => s.label('service_name') === 'narrow'));
    const dropped = lines.filter((l) => l['msg'] === 'target dropped' && l['address'] === wide.address);
    assert.equal(dropped.length, 1, 'said once, not at every rebuild');
    assert.equal(dropped[0]!['reason'], reason);
    assert.deepEqual(daemon.report().dropped.map((d) => d.reason), [reason]);
  } finally {
    await daemon.stop({scrapeDeadlineMs: 0, sendDeadlineMs: 0});
    await wide.close();
    await narrow.close();
    await pyroscope.close();
    await cleanup();
  }
});

void test('with a directory repository too, the target is kept: the directory gets its profiles, Pyroscope none and no line per profile; the dry run and the log say so once', {timeout: 60_000}, async () => {
  const wide = await startUniqueProfileTarget('goroutine.pb.gz');
  const narrow = await startUniqueProfileTarget('goroutine.pb.gz');
  const pyroscope = await startPyroscopeFake();
  const {dir, cleanup} = await tempDir('pprof-label-limit-');
  const {logger, records: lines} = captureLogger();
  const metrics = createMetrics({defaultMetrics: false});
  const daemon = new Daemon({logger, metrics});
  const files = join(dir, 'files');
  const text = yaml(dir, wide.address, narrow.address, `  - pyroscope: {url: "${pyroscope.url}"}\n  - directory: {path: ${JSON.stringify(files)}}`);
  try {
    const config = parseConfig(text, 'test.yaml', {baseDir: dir}).config;
    const report = targetsReport(buildTargets(config, await staticGroups(config)), []);
    assert.equal(report.dropped.length, 0);
    const kept = report.targets.find((t) => t.service === 'wide');
    assert.equal(kept?.not_sent_to?.length, 1);
    assert.equal(kept.not_sent_to[0]!.repository, 'pyroscope');
    assert.match(kept.not_sent_to[0]!.reason, TOO_MANY);
    assert.equal(report.targets.find((t) => t.service === 'narrow')?.not_sent_to, undefined);

    const dry = await dryRun(dir, text);
    assert.deepEqual(dry.json.targets.map((t) => t.not_sent_to), report.targets.map((t) => t.not_sent_to));
    assert.ok(dry.table.includes('not sent to every repository'), dry.table);
    const row = dry.table.split('\n').find((l) => l.startsWith('wide ') && l.includes(' pyroscope '));
    assert.ok(row?.includes(kept.not_sent_to[0]!.reason), dry.table);

    await daemon.apply(parseConfig(text, 'test.yaml', {baseDir: dir}));
    const folder = join(files, 'wide', 'goroutine');
    await waitUntil('three profiles of the wide target in the directory', async () => (await readdir(folder).catch(() => [])).filter((n) => n.endsWith('.json')).length >= 3, {timeoutMs: 20_000});
    await waitUntil('three of its profiles skipped by Pyroscope', async () => (await metricSum(metrics.profilesSent, {repository: 'pyroscope', result: 'skipped'})) >= 3, {timeoutMs: 20_000});
    await pyroscope.waitFor(2, 20_000);
    await daemon.stop({scrapeDeadlineMs: 1000, sendDeadlineMs: 1000});

    const sidecar = JSON.parse(await readFile(join(folder, (await readdir(folder)).find((n) => n.endsWith('.json'))!), 'utf8')) as {labels: Record<string, string>};
    assert.equal(sidecar.labels['l27'], 'v', 'the directory gets the profile with every label');
    assert.ok(pyroscope.received.length >= 2);
    assert.ok(pyroscope.received.every((s) => s.label('service_name') === 'narrow'), 'Pyroscope gets nothing of the wide target');
    assert.deepEqual(pyroscope.rejected, []);
    assert.equal(await metricSum(metrics.profilesSent, {repository: 'pyroscope', result: 'permanent'}), 0);
    assert.ok(wide.served.length >= 3);

    const notes = lines.filter((l) => typeof l['msg'] === 'string' && l['msg'].startsWith('target not sent to a repository'));
    assert.equal(notes.length, 1, 'one line, not one per scrape');
    assert.equal(notes[0]!['address'], wide.address);
    assert.equal(notes[0]!['repository'], 'pyroscope');
    assert.match(String(notes[0]!['reason']), TOO_MANY);
    const said = lines.filter((l) => Number(l['level']) >= 40 && l !== notes[0] && (l['repository'] === 'pyroscope' || l['address'] === wide.address || l['target'] === wide.address));
    assert.deepEqual(said.map((l) => l['msg']), [], 'nothing else is said about it');
  } finally {
    await daemon.stop({scrapeDeadlineMs: 0, sendDeadlineMs: 0});
    await wide.close();
    await narrow.close();
    await pyroscope.close();
    await cleanup();
  }
});

/** The goroutine fixture dated now, each sample carrying these string labels. */
function withSampleLabels(labels: Record<string, string>): Buffer {
  const p = fixtureProfile('goroutine');
  p.timeNanos = BigInt(Date.now()) * 1_000_000n;
  for (const s of p.sample) s.label = Object.entries(labels).map(([k, v]) => new Label({key: p.stringTable.dedup(k), str: p.stringTable.dedup(v)}));
  return gzipSync(p.encode());
}

async function deliver(repo: PyroscopeRepository, profile: ScrapedProfile): Promise<SendResult> {
  const prepared = await repo.prepare(profile);
  if (prepared.status === 'skipped') return prepared;
  return repo.send(prepared.profile, AbortSignal.timeout(5000));
}

void test('labels on samples are counted when a profile is sent: each set of them is a series of its own in Pyroscope', async () => {
  // 25 + instance + provider: 30 series labels, the limit
  const labels = {instance: '10.0.0.7:6060', provider: 'static', ...manyLabels(25)};
  const profile = (data: Buffer): ScrapedProfile => scrapedProfile({targetId: 'abc', type: 'goroutine', labels, time: Date.now(), data});
  const fake = await startPyroscopeFake();
  const repo = await createPyroscopeRepository('p', pyroscopeConfig(fake.url));
  const unchecked = await createPyroscopeRepository('q', pyroscopeConfig(fake.url, {max_label_names_per_series: 0}));
  try {
    const over = await deliver(repo, profile(withSampleLabels({handler: '/api'})));
    assert.equal(over.status, 'permanent');
    assert.match(
      (over as {error: string}).error,
      /^not sent: the series has 31 label names \(__name__, __delta__, service_name, 27 target labels \(.*\) and the sample label handler\) and Pyroscope allows 30 \(max_label_names_per_series\): drop target labels or the labels the program sets on its samples \(1 too many\)/,
    );
    assert.equal(fake.requests(), 0, 'nothing sent to a certain refusal');
    // what Pyroscope itself answers, unchecked here
    assert.equal((await deliver(unchecked, profile(withSampleLabels({handler: '/api'})))).status, 'permanent');
    assert.equal(fake.rejected[0]?.status, 400);
    // span_id and profile_id do not split series; a name the series has keeps the series' value
    assert.deepEqual(await deliver(repo, profile(withSampleLabels({span_id: '1a2b', profile_id: '3c4d', l00: 'other'}))), {status: 'ok'});
    assert.equal(fake.received.length, 1);
  } finally {
    await repo.close();
    await unchecked.close();
    await fake.close();
  }
});
