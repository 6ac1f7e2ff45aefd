/**
 * Docker discovery against a real engine (Debian's dockerd, started by the
 * test on its own socket). Containers on the bridge network are discovered
 * but never connected to: only the dry run sees them, and every daemon here
 * drops any address outside 127.0.0.0/8. Containers in host network mode
 * serve pprof on their own 127.0.0.x address and are scraped for real.
 */
import assert from 'node:assert/strict';
import {mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {after, before, test} from 'node:test';
import {gunzipSync} from 'node:zlib';
import {Profile} from 'pprof-format';
import {parseConfig} from '../../src/config/index.js';
import {Daemon} from '../../src/daemon.js';
import {discoverOnce} from '../../src/discovery/index.js';
import {silentLogger} from '../../src/log.js';
import {buildTargets, targetsReport} from '../../src/targets/index.js';
import type {TargetsReport} from '../../src/targets/index.js';
import {runCli} from '../helpers/cli.js';
import {importTargetImage, runTargetContainer} from '../helpers/docker-image.js';
import {freePort, skipWithoutDocker, startDockerEngine} from '../helpers/dockerd.js';
import type {DockerEngine} from '../helpers/dockerd.js';
import {captureLogger} from '../helpers/log.js';
import {waitUntil} from '../helpers/wait.js';

const skip = await skipWithoutDocker();

let engine: DockerEngine;
let dir: string;
/** The bridge IPs the engine reported, by container name. */
const bridgeIps = new Map<string, string>();

// Every daemon config here ends with this rule, so no test can scrape a
// container on a Docker network even if a filter were wrong.
const LOOPBACK_ONLY = `overrides:
  - match: {address: "/^(?!127\\\\.)/"}
    drop: true
`;

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'pps-docker-'));
  engine = await startDockerEngine({tls: true});
  await importTargetImage(engine.docker);
  const bridge: [string, Record<string, string>][] = [
    ['shop-api', {'pprof.scrape': 'true', 'pprof.port': '7070', 'com.docker.compose.project': 'shop', 'com.docker.compose.service': 'api', team: 'core'}],
    ['bad-port', {'pprof.scrape': 'true', 'pprof.port': 'seventy'}],
    ['plain', {}],
  ];
  for (const [name, labels] of bridge) {
    const c = await runTargetContainer(engine.docker, {name, labels});
    const info = await c.inspect();
    bridgeIps.set(name, info.NetworkSettings.Networks['bridge']?.IPAddress ?? '');
  }
  await runTargetContainer(engine.docker, {name: 'isolated', network: 'none', labels: {'pprof.scrape': 'true'}});
}, {timeout: 240_000});

after(async () => {
  await engine?.destroy();
  if (dir) await rm(dir, {recursive: true, force: true});
});

async function writeConfig(name: string, yaml: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, yaml);
  return path;
}

function parse(yaml: string) {
  return parseConfig(yaml, 'docker-test.yaml', {baseDir: dir, env: {}});
}

test('dry run: labelled containers by label filter, overrides from labels good and bad, the bridge address as reported', {skip, timeout: 60_000}, async () => {
  const config = await writeConfig('labelled.yaml', `discovery:
  - docker:
      host: ${engine.host}
      filters: {label: ["pprof.scrape=true"]}
repositories: [{directory: {path: ${dir}/unused}}]
overrides:
  - match: {label_team: core}
    labels: {tier: gold}
`);
  const run = await runCli(['targets', '--config', config, '--output', 'json']);
  assert.equal(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout) as TargetsReport;
  assert.deepEqual(report.errors, []);

  const ip = bridgeIps.get('shop-api')!;
  assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/);
  assert.equal(report.targets.length, 1);
  const api = report.targets[0]!;
  assert.equal(api.provider, 'docker');
  assert.equal(api.address, `${ip}:7070`);
  assert.equal(api.service, 'api');
  const {container_id: id, ...labels} = api.labels;
  assert.match(id ?? '', /^[0-9a-f]{12}$/);
  assert.deepEqual(labels, {
    instance: `${ip}:7070`,
    provider: 'docker',
    container_name: 'shop-api',
    image: 'pprof-target:test',
    compose_project: 'shop',
    compose_service: 'api',
    tier: 'gold',
  });

  const reasons = Object.fromEntries(report.dropped.map((d) => [d.labels['container_name'], d.reason]));
  assert.deepEqual(reasons, {
    'bad-port': 'label pprof.port: "seventy" is not a port',
    isolated: 'container isolated has networking disabled (network mode none)',
  });
  const bad = report.dropped.find((d) => d.labels['container_name'] === 'bad-port');
  assert.equal(bad?.address, `${bridgeIps.get('bad-port')}:6060`);
  assert.equal(bad?.labels['label_pprof_port'], 'seventy');
});

test('dry run: DOCKER_HOST when host is unset; a name filter; the block port and the container name as service', {skip, timeout: 60_000}, async () => {
  const config = await writeConfig('by-name.yaml', `discovery:
  - docker:
      filters: {name: ["^/plain$"]}
      port: 9090
repositories: [{directory: {path: ${dir}/unused}}]
`);
  const run = await runCli(['targets', '--config', config, '--output', 'json'], {env: {...process.env, DOCKER_HOST: engine.host}});
  assert.equal(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout) as TargetsReport;
  assert.deepEqual(report.targets.map((t) => [t.service, t.address]), [['plain', `${bridgeIps.get('plain')}:9090`]]);
  assert.deepEqual(report.dropped, []);
});

test('dry run: an engine that cannot be reached is an errors entry and exit 2; the other providers\' targets still print', {skip, timeout: 60_000}, async () => {
  const config = await writeConfig('unreachable.yaml', `discovery:
  - static: {targets: ["127.0.0.1:6060"]}
  - docker: {host: "unix://${dir}/no-engine.sock"}
repositories: [{directory: {path: ${dir}/unused}}]
`);
  const run = await runCli(['targets', '--config', config, '--output', 'json']);
  assert.equal(run.code, 2, run.stderr);
  const report = JSON.parse(run.stdout) as TargetsReport;
  assert.deepEqual(report.targets.map((t) => t.address), ['127.0.0.1:6060']);
  assert.deepEqual(report.errors, [
    {
      provider: 'docker',
      source: 'discovery[1]',
      error: `cannot reach the Docker engine at unix://${dir}/no-engine.sock: connect ENOENT ${dir}/no-engine.sock: is dockerd running, and is the daemon's user in the docker group?`,
    },
  ]);
  assert.match(run.stderr, /cannot reach the Docker engine/);
});

test('tcp:// with TLS: the engine\'s client certificate opens it; without one, or without TLS, the error says what to do', {skip, timeout: 60_000}, async () => {
  const tls = engine.tls!;
  const withCert = parse(`discovery:
  - docker:
      host: ${tls.host}
      tls: {ca: ${tls.ca}, cert: ${tls.cert}, key: ${tls.key}}
      filters: {label: ["com.docker.compose.service=api"]}
repositories: [{directory: {path: ${dir}/unused}}]
`);
  const ok = await discoverOnce(withCert.config.discovery, {logger: silentLogger(), timeoutMs: 15_000});
  assert.deepEqual(ok.problems, []);
  const built = targetsReport(buildTargets(withCert.config, ok.groups), ok.problems);
  assert.deepEqual(built.targets.map((t) => t.labels['container_name']), ['shop-api']);

  const withoutCert = parse(`discovery:
  - docker: {host: ${tls.host}, tls: {ca: ${tls.ca}}}
repositories: [{directory: {path: ${dir}/unused}}]
`);
  const refused = await discoverOnce(withoutCert.config.discovery, {logger: silentLogger(), timeoutMs: 15_000});
  assert.equal(refused.problems.length, 1);
  assert.match(refused.problems[0]!.error, /^TLS with the Docker engine at tcp:\/\/127\.0\.0\.1:\d+ failed: .*: the engine did not accept this client/);

  const plain = parse(`discovery:
  - docker: {host: ${tls.host}}
repositories: [{directory: {path: ${dir}/unused}}]
`);
  const http = await discoverOnce(plain.config.discovery, {logger: silentLogger(), timeoutMs: 15_000});
  assert.match(http.problems[0]?.error ?? '', /answered HTTP 400 to the container list: Client sent an HTTP request to an HTTPS server\.: the engine speaks TLS/);
});

test('a container in host network mode on 127.0.0.23 is scraped end to end into a directory repository', {skip, timeout: 90_000}, async () => {
  const port = await freePort('127.0.0.23');
  const out = join(dir, 'profiles-e2e');
  const daemon = new Daemon({logger: silentLogger()});
  const container = await runTargetContainer(engine.docker, {
    name: 'e2e',
    network: 'host',
    listen: `127.0.0.23:${port}`,
    labels: {suite: 'e2e', 'pprof.port': String(port), 'pprof.service': 'e2e-svc', 'pprof.label.team': 'core'},
  });
  try {
    await daemon.apply(parse(`scrape: {interval: 2s, timeout: 5s}
profiles:
  heap: {path: /debug/pprof/heap}
  goroutine: {path: /debug/pprof/goroutine}
discovery:
  - docker:
      host: ${engine.host}
      filters: {label: ["suite=e2e"]}
      host_address: 127.0.0.23
      refresh: 10m
repositories: [{directory: {path: ${out}}}]
server: {listen: "127.0.0.1:0"}
${LOOPBACK_ONLY}`));
    const files = await waitUntil('a heap and a goroutine profile on disk', async () => {
      const found: string[] = [];
      for (const type of ['heap', 'goroutine']) {
        const names = await readdir(join(out, 'e2e-svc', type)).catch(() => [] as string[]);
        const pb = names.find((n) => n.endsWith('.pb.gz'));
        if (pb) found.push(join(out, 'e2e-svc', type, pb));
      }
      return found.length === 2 ? found : undefined;
    }, {timeoutMs: 30_000});
    for (const file of files) {
      const profile = Profile.decode(gunzipSync(await readFile(file)));
      assert.ok(profile.sample.length > 0, `${file} has samples`);
      const sidecar = JSON.parse(await readFile(file.replace(/\.pb\.gz$/, '.json'), 'utf8'));
      assert.equal(sidecar.service, 'e2e-svc');
      assert.equal(sidecar.labels.instance, `127.0.0.23:${port}`);
      assert.equal(sidecar.labels.provider, 'docker');
      assert.equal(sidecar.labels.container_name, 'e2e');
      assert.equal(sidecar.labels.container_id, container.id.slice(0, 12));
      assert.equal(sidecar.labels.image, 'pprof-target:test');
      assert.equal(sidecar.labels.team, 'core');
    }
    // the Go runtime's own stacks: a real Go program answered
    const goroutine = Profile.decode(gunzipSync(await readFile(files[1]!)));
    const names = goroutine.function.map((f) => String(goroutine.stringTable.strings[Number(f.name)]));
    assert.ok(names.some((n) => n.startsWith('runtime.')), 'runtime functions in the goroutine profile');
  } finally {
    await daemon.stop();
    await container.remove({force: true});
  }
});

function liveTarget(daemon: Daemon, name: string) {
  return daemon.report().targets.find((t) => t.labels['container_name'] === name);
}

test('events: a container started after the daemon is a target within 2 s, re-created with new labels it changes, stopped it leaves within 2 s', {skip, timeout: 90_000}, async () => {
  const port = await freePort('127.0.0.24');
  const daemon = new Daemon({logger: silentLogger()});
  try {
    await daemon.apply(parse(`scrape: {interval: 1h}
profiles: {heap: {path: /debug/pprof/heap}}
discovery:
  - docker:
      host: ${engine.host}
      filters: {label: ["suite=events"]}
      host_address: 127.0.0.24
      refresh: 10m
repositories: [{directory: {path: ${dir}/unused}}]
server: {listen: "127.0.0.1:0"}
${LOOPBACK_ONLY}`));
    await waitUntil('the first refresh', () => daemon.ready, {timeoutMs: 15_000});
    assert.equal(liveTarget(daemon, 'ev'), undefined);

    const labels = {suite: 'events', 'pprof.port': String(port)};
    let container = await runTargetContainer(engine.docker, {name: 'ev', network: 'host', listen: `127.0.0.24:${port}`, labels});
    // the full refresh is 10 minutes away: only events can do this in time
    const target = await waitUntil('the new container as a target', () => liveTarget(daemon, 'ev'), {timeoutMs: 2000, everyMs: 20});
    assert.equal(target.address, `127.0.0.24:${port}`);
    assert.equal(target.service, 'ev');

    // labels change only by re-creating the container
    await container.remove({force: true});
    container = await runTargetContainer(engine.docker, {name: 'ev', network: 'host', listen: `127.0.0.24:${port}`, labels: {...labels, 'pprof.service': 'renamed'}});
    await waitUntil('the re-created container with its new service', () => liveTarget(daemon, 'ev')?.service === 'renamed', {timeoutMs: 2000, everyMs: 20});

    await container.stop({t: 2});
    await waitUntil('the stopped container to leave', () => liveTarget(daemon, 'ev') === undefined, {timeoutMs: 2000, everyMs: 20});
    await container.remove({force: true});
  } finally {
    await daemon.stop();
  }
});

test('the engine stopped and started under a running daemon: targets kept meanwhile, the event stream reconnects', {skip, timeout: 180_000}, async () => {
  const portA = await freePort('127.0.0.25');
  const portB = await freePort('127.0.0.26');
  const {logger, records: lines} = captureLogger();
  const daemon = new Daemon({logger});
  const connects = (): number => lines.filter((l) => l['msg'] === 'docker event stream connected').length;
  try {
    // comes back with the engine
    await runTargetContainer(engine.docker, {name: 'survivor', network: 'host', listen: `127.0.0.25:${portA}`, restart: 'always', labels: {suite: 'restart', 'pprof.port': String(portA)}});
    await daemon.apply(parse(`scrape: {interval: 1h}
profiles: {heap: {path: /debug/pprof/heap}}
discovery:
  - docker:
      host: ${engine.host}
      filters: {label: ["suite=restart"]}
      host_address: 127.0.0.25
      refresh: 10m
repositories: [{directory: {path: ${dir}/unused}}]
server: {listen: "127.0.0.1:0"}
${LOOPBACK_ONLY}`));
    await waitUntil('the survivor as a target', () => liveTarget(daemon, 'survivor'), {timeoutMs: 5000, everyMs: 20});
    await waitUntil('the event stream', () => connects() >= 1, {timeoutMs: 5000, everyMs: 20});
    const before = connects();

    await engine.stop();
    const outage = await waitUntil('the failure in the report', () => {
      const r = daemon.report();
      return r.errors.length > 0 ? r : undefined;
    }, {timeoutMs: 30_000});
    assert.match(outage.errors[0]!.error, /^cannot reach the Docker engine at unix:\/\/.*: connect (ENOENT|ECONNREFUSED)/);
    assert.ok(outage.targets.some((t) => t.labels['container_name'] === 'survivor'), 'the last good targets stay');
    const failures = await daemon.metrics.registry.getSingleMetricAsString('pprof_scraper_discovery_failures_total');
    assert.match(failures, /provider="docker"[^}]*\} [1-9]/);

    await engine.start();
    await waitUntil('the event stream to reconnect', () => connects() > before, {timeoutMs: 60_000, everyMs: 50});
    await waitUntil('the error to clear', () => daemon.report().errors.length === 0, {timeoutMs: 30_000});

    const late = await runTargetContainer(engine.docker, {name: 'late', network: 'host', listen: `127.0.0.26:${portB}`, labels: {suite: 'restart', 'pprof.port': String(portB)}});
    await waitUntil('a container started after the restart, by events', () => liveTarget(daemon, 'late'), {timeoutMs: 2000, everyMs: 20});
    await late.stop({t: 2});
    await waitUntil('it leaves again, by events', () => liveTarget(daemon, 'late') === undefined, {timeoutMs: 2000, everyMs: 20});
    await late.remove({force: true});
    await waitUntil('the survivor, restarted with the engine', () => liveTarget(daemon, 'survivor'), {timeoutMs: 10_000});
  } finally {
    await daemon.stop();
  }
});
