import assert from 'node:assert/strict';
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {createServer} from 'node:http';
import type {IncomingMessage, Server, ServerResponse} from 'node:http';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {after, before, test} from 'node:test';
import {parseConfig} from '../../src/config/index.js';
import type {DockerConfig} from '../../src/config/index.js';
import {DiscoveryError} from '../../src/discovery/index.js';
import type {Provider} from '../../src/discovery/index.js';
import {createDockerProvider} from '../../src/discovery/providers/docker.js';
import {dockerError, resolveDockerEndpoint} from '../../src/discovery/providers/docker-engine.js';
import {silentLogger} from '../../src/log.js';
import {waitUntil} from '../helpers/wait.js';

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pps-docker-unit-'));
});
after(async () => {
  await rm(dir, {recursive: true, force: true});
});

function dockerConfig(block: string): DockerConfig {
  const {config} = parseConfig(`discovery:\n  - docker: ${block}\nrepositories: [{directory: {path: ${dir}/p}}]\n`, 'test.yaml', {baseDir: dir});
  return config.discovery[0]!.docker!;
}

/** Speaks the two Docker API calls the provider makes, over a unix socket, as dockerd does. */
class FakeEngine {
  readonly socketPath: string;
  readonly server: Server;
  readonly listQueries: URLSearchParams[] = [];
  readonly eventQueries: URLSearchParams[] = [];
  readonly streams = new Set<ServerResponse>();
  containers: unknown[] = [];
  listStatus = 200;
  listBody: unknown = undefined;
  listRaw: string | undefined;

  constructor(name: string) {
    this.socketPath = join(dir, `${name}.sock`);
    this.server = createServer((req, res) => this.#handle(req, res));
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(this.socketPath, resolve));
    return this;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://docker');
    if (url.pathname === '/containers/json') {
      this.listQueries.push(url.searchParams);
      res.writeHead(this.listStatus, {'content-type': 'application/json'});
      res.end(this.listRaw ?? JSON.stringify(this.listBody ?? this.containers));
      return;
    }
    if (url.pathname === '/events') {
      this.eventQueries.push(url.searchParams);
      res.writeHead(200, {'content-type': 'application/json'});
      res.flushHeaders();
      this.streams.add(res);
      res.on('close', () => this.streams.delete(res));
      return;
    }
    res.writeHead(404).end('{"message":"page not found"}');
  }

  send(event: object): void {
    for (const s of this.streams) s.write(JSON.stringify(event) + '\n');
  }

  /** As dockerd does when it shuts down. */
  closeStreams(): void {
    for (const s of this.streams) s.end();
  }

  async stop(): Promise<void> {
    for (const s of this.streams) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

const RUNNING = {
  Id: 'c0ffee0000000000000000000000000000000000000000000000000000000000',
  Names: ['/api'],
  Image: 'api:1',
  Labels: {'pprof.scrape': 'true'},
  State: 'running',
  HostConfig: {NetworkMode: 'host'},
  NetworkSettings: {Networks: {host: {IPAddress: ''}}},
};

test('refresh lists running containers with the configured filters, in Docker\'s filter syntax', async () => {
  const engine = await new FakeEngine('list').start();
  const provider = await createDockerProvider(dockerConfig(`{host: "unix://${engine.socketPath}", filters: {label: ["pprof.scrape=true"], name: api}, host_address: 127.0.0.9}`), 0, {logger: silentLogger()}, {});
  try {
    engine.containers = [RUNNING];
    const found = await provider.refresh(AbortSignal.timeout(5000));
    assert.equal(found.length, 1);
    assert.equal(found[0]?.address, '127.0.0.9');
    assert.equal(provider.directiveNoun, 'label');
    assert.equal(provider.refreshInterval, 30_000);
    assert.deepEqual(JSON.parse(engine.listQueries[0]?.get('filters') ?? ''), {label: ['pprof.scrape=true'], name: ['api'], status: ['running']});
  } finally {
    await provider.close?.();
    await engine.stop();
  }
});

test('a status filter is refused: only running containers are listed', async () => {
  await assert.rejects(createDockerProvider(dockerConfig('{filters: {status: exited}}'), 2, {logger: silentLogger()}, {}), (err: Error) => {
    assert.ok(err instanceof DiscoveryError);
    assert.match(err.message, /^discovery\[2\]\.docker\.filters\.status: only running containers/);
    return true;
  });
});

test('refresh errors say which engine and what to do', async () => {
  const engine = await new FakeEngine('errors').start();
  const provider = await createDockerProvider(dockerConfig(`{host: "unix://${engine.socketPath}"}`), 0, {logger: silentLogger()}, {});
  const gone = await createDockerProvider(dockerConfig(`{host: "unix://${dir}/missing.sock"}`), 0, {logger: silentLogger()}, {});
  try {
    engine.listStatus = 400;
    engine.listBody = {message: "invalid filter 'colour'"};
    await assert.rejects(provider.refresh(AbortSignal.timeout(5000)), {
      name: 'DiscoveryError',
      message: `the Docker engine at unix://${engine.socketPath} answered HTTP 400 to the container list: invalid filter 'colour': check the docker block's filters (Docker's own filter names: label, name, network, ...)`,
    });
    engine.listStatus = 200;
    engine.listBody = {not: 'a list'};
    await assert.rejects(provider.refresh(AbortSignal.timeout(5000)), /answered the container list with something that is not a list/);
    engine.listRaw = '<html>a proxy</html>';
    await assert.rejects(provider.refresh(AbortSignal.timeout(5000)), {
      message: `unix://${engine.socketPath} answered the container list with something that is not a list: is it a Docker engine?`,
    });
    engine.listRaw = undefined;
    await assert.rejects(gone.refresh(AbortSignal.timeout(5000)), {
      name: 'DiscoveryError',
      code: 'ENOENT',
      message: `cannot reach the Docker engine at unix://${dir}/missing.sock: connect ENOENT ${dir}/missing.sock: is dockerd running, and is the daemon's user in the docker group?`,
    });
  } finally {
    await provider.close?.();
    await gone.close?.();
    await engine.stop();
  }
});

test('watch: one changed() per event, a reject when the engine closes the stream, a resolve on abort', async () => {
  const engine = await new FakeEngine('events').start();
  const provider: Provider = await createDockerProvider(dockerConfig(`{host: "unix://${engine.socketPath}", filters: {label: ["pprof.scrape=true"]}}`), 0, {logger: silentLogger()}, {});
  try {
    let calls = 0;
    const controller = new AbortController();
    const watching = provider.watch!(controller.signal, () => calls++);
    await waitUntil('the event stream', () => engine.streams.size === 1);
    const filters = JSON.parse(engine.eventQueries[0]?.get('filters') ?? '') as Record<string, string[]>;
    assert.deepEqual(filters['type'], ['container']);
    assert.deepEqual(filters['label'], ['pprof.scrape=true']);
    for (const e of ['start', 'die', 'stop', 'destroy']) assert.ok(filters['event']?.includes(e), e);
    // one call on connect (what happened before the stream was up), then one per event
    await waitUntil('the connect call', () => calls === 1);
    engine.send({Type: 'container', Action: 'start', Actor: {ID: RUNNING.Id}});
    engine.send({Type: 'container', Action: 'die', Actor: {ID: RUNNING.Id}});
    await waitUntil('two events', () => calls === 3);
    controller.abort();
    await watching;

    const second = provider.watch!(new AbortController().signal, () => undefined);
    await waitUntil('a second stream', () => engine.eventQueries.length === 2);
    engine.closeStreams();
    await assert.rejects(second, {name: 'DiscoveryError', message: `the Docker engine at unix://${engine.socketPath} closed the event stream`});
  } finally {
    await provider.close?.();
    await engine.stop();
  }
});

test('watch without a label filter also follows network connect and disconnect', async () => {
  const engine = await new FakeEngine('netevents').start();
  const provider = await createDockerProvider(dockerConfig(`{host: "unix://${engine.socketPath}"}`), 0, {logger: silentLogger()}, {});
  const controller = new AbortController();
  try {
    const watching = provider.watch!(controller.signal, () => undefined);
    await waitUntil('the event stream', () => engine.streams.size === 1);
    const filters = JSON.parse(engine.eventQueries[0]?.get('filters') ?? '') as Record<string, string[]>;
    assert.deepEqual(filters['type'], ['container', 'network']);
    assert.ok(filters['event']?.includes('connect'));
    controller.abort();
    await watching;
  } finally {
    await provider.close?.();
    await engine.stop();
  }
});

test('watch rejects at once when the engine cannot be reached', async () => {
  const provider = await createDockerProvider(dockerConfig(`{host: "unix://${dir}/nothing.sock"}`), 0, {logger: silentLogger()}, {});
  try {
    await assert.rejects(provider.watch!(new AbortController().signal, () => undefined), {
      name: 'DiscoveryError',
      code: 'ENOENT',
      message: /^cannot reach the Docker engine at unix:\/\/.*nothing\.sock: connect ENOENT/,
    });
  } finally {
    await provider.close?.();
  }
});

test('endpoint: the local socket by default, DOCKER_HOST when host is unset, host over DOCKER_HOST', async () => {
  const where = 'discovery[0].docker';
  const byDefault = await resolveDockerEndpoint(dockerConfig('{}'), {}, where);
  assert.equal(byDefault.description, 'unix:///var/run/docker.sock');
  assert.equal(byDefault.options.socketPath, '/var/run/docker.sock');

  const fromEnv = await resolveDockerEndpoint(dockerConfig('{}'), {DOCKER_HOST: 'unix:///run/user/1000/docker.sock'}, where);
  assert.equal(fromEnv.options.socketPath, '/run/user/1000/docker.sock');

  const explicit = await resolveDockerEndpoint(dockerConfig('{host: "unix:///srv/docker.sock"}'), {DOCKER_HOST: 'tcp://10.9.9.9:2375'}, where);
  assert.equal(explicit.options.socketPath, '/srv/docker.sock');
  // dockerode would prefer a host it took from DOCKER_HOST over the socket
  assert.equal(explicit.options.host, undefined);

  const plainTcp = await resolveDockerEndpoint(dockerConfig('{}'), {DOCKER_HOST: 'tcp://10.0.0.5'}, where);
  assert.equal(plainTcp.description, 'tcp://10.0.0.5:2375');
  assert.equal(plainTcp.options.protocol, 'http');
  assert.equal(plainTcp.options.socketPath, undefined);
  for (const e of [byDefault, fromEnv, explicit, plainTcp]) e.options.agent.destroy();
});

test('endpoint: tcp:// with tls files speaks https with the client certificate', async () => {
  for (const f of ['ca.pem', 'cert.pem', 'key.pem']) await writeFile(join(dir, f), `-----${f}-----\n`);
  const tls = await resolveDockerEndpoint(dockerConfig('{host: "tcp://docker.internal", tls: {ca: ca.pem, cert: cert.pem, key: key.pem}}'), {}, 'discovery[0].docker');
  assert.equal(tls.description, 'tcp://docker.internal:2376');
  assert.equal(tls.options.protocol, 'https');
  assert.equal(tls.options.port, 2376);
  assert.equal((tls.options.cert as Buffer).toString(), '-----cert.pem-----\n');
  tls.options.agent.destroy();

  const env = await resolveDockerEndpoint(dockerConfig('{}'), {DOCKER_HOST: 'tcp://10.0.0.5:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: dir}, 'discovery[0].docker');
  assert.equal(env.options.protocol, 'https');
  assert.equal((env.options.key as Buffer).toString(), '-----key.pem-----\n');
  env.options.agent.destroy();
});

test('endpoint: what cannot work is said at start', async () => {
  const cases: [string, NodeJS.ProcessEnv, RegExp][] = [
    ['{}', {DOCKER_HOST: 'ssh://me@box'}, /^discovery\[0\]\.docker: DOCKER_HOST "ssh:\/\/me@box": ssh:\/\/ is not supported: use unix:\/\/\/path\/to\/docker\.sock or tcp:\/\/host:port$/],
    ['{}', {DOCKER_HOST: 'unix://'}, /^discovery\[0\]\.docker: DOCKER_HOST "unix:\/\/" names no socket/],
  ];
  for (const [block, env, message] of cases) {
    await assert.rejects(resolveDockerEndpoint(dockerConfig(block), env, 'discovery[0].docker'), {name: 'DiscoveryError', message});
  }
});

test('engine errors: permission, TLS, other', () => {
  const eacces = dockerError(Object.assign(new Error('connect EACCES /var/run/docker.sock'), {code: 'EACCES'}), 'unix:///var/run/docker.sock', 'the container list');
  assert.equal(eacces.message, "cannot reach the Docker engine at unix:///var/run/docker.sock: connect EACCES /var/run/docker.sock: the daemon's user may not open the socket: add it to the docker group (SupplementaryGroups=docker under systemd)");
  const tls = dockerError(Object.assign(new Error('self-signed certificate in certificate chain'), {code: 'SELF_SIGNED_CERT_IN_CHAIN'}), 'tcp://h:2376', 'the container list');
  assert.equal(tls.message, "TLS with the Docker engine at tcp://h:2376 failed: self-signed certificate in certificate chain: check the docker block's tls ca (the CA that signed the engine's certificate), cert and key");
  const alert = dockerError(
    Object.assign(new Error('803C0A895E7F0000:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 42'), {code: 'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE'}),
    'tcp://h:2376',
    'the container list',
  );
  assert.equal(alert.message, 'TLS with the Docker engine at tcp://h:2376 failed: sslv3 alert bad certificate: the engine did not accept this client: give the docker block tls cert and key signed by the CA that dockerd --tlsverify trusts');
  const other = dockerError(new Error('socket hang up'), 'tcp://h:2375', 'the event stream');
  assert.equal(other.message, 'the event stream on the Docker engine at tcp://h:2375 failed: socket hang up');
});
