/**
 * A real Docker engine for tests: Debian's dockerd on its own data root,
 * exec root and unix socket in a temp folder, stopped by its PID at the end.
 * dockerd needs root; without root or without dockerd the tests that need
 * it skip (or fail under PPROF_SCRAPER_REQUIRE_PEERS=1).
 */
import {execFile, spawn} from 'node:child_process';
import type {ChildProcess} from 'node:child_process';
import {closeSync, openSync, readFileSync} from 'node:fs';
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {request} from 'node:http';
import {createServer} from 'node:net';
import {basename, join} from 'node:path';
import Docker from 'dockerode';
import {goStatus} from './go-target.js';
import {requirePeer} from './peers.js';
import {waitUntil, WaitTimeoutError} from './wait.js';

const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 60_000;
// dockerd finds containerd, runc, docker-init and docker-proxy on PATH
const PATH = [...new Set([...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'])].filter(Boolean).join(':');

function run(file: string, args: string[], timeout = 30_000): Promise<{stdout: string; stderr: string}> {
  return new Promise((resolve, reject) => {
    execFile(file, args, {timeout, env: {...process.env, PATH}, maxBuffer: 4 * 1024 * 1024}, (err, stdout, stderr) => {
      if (err) reject(Object.assign(err as Error, {stdout, stderr}));
      else resolve({stdout, stderr});
    });
  });
}

let check: Promise<{available: boolean; why: string}> | undefined;

/** Whether this process can run its own dockerd; the reason when it cannot. */
export function dockerStatus(): Promise<{available: boolean; why: string}> {
  check ??= (async () => {
    const uid = process.getuid?.();
    if (uid !== 0) return {available: false, why: `dockerd needs root and this test runs as uid ${uid ?? 'unknown'}`};
    for (const bin of ['dockerd', 'containerd', 'runc']) {
      try {
        await run(bin, ['--version']);
      } catch (err) {
        const e = err as NodeJS.ErrnoException & {stderr?: string};
        return {available: false, why: e.code === 'ENOENT' ? `${bin} not found on PATH (Debian: apt-get install docker.io)` : `${bin} --version failed: ${(e.stderr ?? e.message).trim()}`};
      }
    }
    return {available: true, why: 'dockerd, containerd and runc found; running as root'};
  })();
  return check;
}

/** The node:test `skip` value for tests that need a Docker engine and the Go target for its image. */
export async function skipWithoutDocker(): Promise<string | false> {
  const docker = await dockerStatus();
  const skip = requirePeer('docker', docker.available, docker.why);
  if (skip) return skip;
  const go = await goStatus();
  return requirePeer('go', go.available, `the test image holds the Go target: ${go.why}`);
}

export interface EngineTls {
  /** tcp://127.0.0.1:PORT, TLS with client certificates (--tlsverify). */
  readonly host: string;
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface DockerEngine {
  /** Its temp folder: data root, exec root, socket, log. */
  readonly dir: string;
  readonly socketPath: string;
  /** unix://<socketPath> */
  readonly host: string;
  /** A client of this engine, for setting up containers. */
  readonly docker: Docker;
  readonly tls: EngineTls | undefined;
  /** dockerd's PID while it runs. */
  readonly pid: number | undefined;
  /** SIGTERM to dockerd (its containers stop with it) and wait; the data stays for start(). */
  stop(): Promise<void>;
  /** Starts dockerd again on the same folders and socket. */
  start(): Promise<void>;
  /** The last lines of dockerd's log, for failure messages. */
  logTail(lines?: number): string;
  /** stop(), then unmount what dockerd left mounted and remove the folder. Idempotent. */
  destroy(): Promise<void>;
}

const running = new Set<ChildProcess>();
// A test process that dies with an engine up would leave it (and its
// containers) running: SIGTERM makes dockerd stop them on its own.
process.once('exit', () => {
  for (const child of running) child.kill('SIGTERM');
});

export async function startDockerEngine(options: {tls?: boolean} = {}): Promise<DockerEngine> {
  // unix socket paths are limited to 108 bytes, and containerd's sockets live under the exec root
  const dir = await mkdtemp('/tmp/ppsd-');
  const socketPath = join(dir, 'd.sock');
  const logPath = join(dir, 'dockerd.log');
  const tls = options.tls ? await makeTls(dir) : undefined;
  const args = [
    '--iptables=false',
    '--storage-driver=vfs',
    '--data-root', join(dir, 'data'),
    '--exec-root', join(dir, 'x'),
    '--pidfile', join(dir, 'pid'),
    '-H', `unix://${socketPath}`,
    // dockerd uses a system containerd when one runs: keep this engine's containers apart from any other's
    '--containerd-namespace', basename(dir),
    '--containerd-plugins-namespace', `${basename(dir)}-plugins`,
  ];
  if (tls) args.push('--tlsverify', '--tlscacert', tls.ca, '--tlscert', join(dir, 'tls', 'server-cert.pem'), '--tlskey', join(dir, 'tls', 'server-key.pem'), '-H', tls.host);

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let destroyed = false;

  const start = async (): Promise<void> => {
    if (child) return;
    const log = openSync(logPath, 'a');
    const proc = spawn('dockerd', args, {stdio: ['ignore', log, log], env: {...process.env, PATH}});
    closeSync(log);
    child = proc;
    running.add(proc);
    exited = new Promise((resolve) => {
      proc.once('exit', () => {
        running.delete(proc);
        if (child === proc) child = undefined;
        resolve();
      });
    });
    const spawnError = new Promise<Error>((resolve) => proc.once('error', resolve));
    const answers = async (): Promise<boolean> => {
      if (await ping(socketPath)) return true;
      if (child === proc) return false;
      const err = await Promise.race([spawnError, exited.then(() => undefined)]);
      throw new Error(`dockerd ${args.join(' ')} exited before answering /_ping${err ? `: ${err.message}` : ''}; log:\n${tail(logPath, 30)}`);
    };
    try {
      await waitUntil(`dockerd to answer /_ping on ${socketPath}`, answers, {timeoutMs: START_TIMEOUT_MS, everyMs: 100});
    } catch (err) {
      if (!(err instanceof WaitTimeoutError)) throw err;
      await stop();
      throw new Error(`dockerd did not answer /_ping on ${socketPath} within ${START_TIMEOUT_MS / 1000}s; log:\n${tail(logPath, 30)}`);
    }
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      // containerd is dockerd's child and outlives a SIGKILLed parent
      killPidFile(join(dir, 'x', 'containerd', 'containerd.pid'));
    }, STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };

  const engine: DockerEngine = {
    dir,
    socketPath,
    host: `unix://${socketPath}`,
    docker: new Docker({socketPath}),
    tls,
    get pid() {
      return child?.pid;
    },
    stop,
    start,
    logTail: (lines = 30) => tail(logPath, lines),
    destroy: async () => {
      if (destroyed) return;
      destroyed = true;
      await stop();
      await unmountUnder(dir);
      await rm(dir, {recursive: true, force: true});
    },
  };
  try {
    await start();
  } catch (err) {
    await engine.destroy();
    throw err;
  }
  return engine;
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({socketPath, path: '/_ping', timeout: 1000}, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

function tail(path: string, lines: number): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function killPidFile(path: string): void {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    if (pid > 0) process.kill(pid, 'SIGKILL');
  } catch {
    // not running
  }
}

/** dockerd leaves its netns bind mount (and container mounts after a crash) under the folder. */
async function unmountUnder(dir: string): Promise<void> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  const points = mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .map((p) => p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const point of points) {
    try {
      await run('umount', [point]);
    } catch {
      await run('umount', ['-l', point]).catch(() => undefined);
    }
  }
}

async function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, as dockerd --tlsverify wants them. */
async function makeTls(dir: string): Promise<EngineTls> {
  const d = join(dir, 'tls');
  const f = (name: string): string => join(d, name);
  await run('mkdir', ['-p', d]);
  const subj = (cn: string): string[] => ['-subj', `/CN=${cn}`];
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-keyout', f('ca-key.pem'), '-out', f('ca.pem'), ...subj('pprof-scraper test CA')]);
  for (const [who, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'],
    ['client', 'extendedKeyUsage=clientAuth\n'],
  ] as const) {
    await writeFile(f(`${who}.ext`), ext);
    await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f(`${who}-key.pem`), '-out', f(`${who}.csr`), ...subj(who === 'server' ? '127.0.0.1' : 'pprof-scraper')]);
    await run('openssl', ['x509', '-req', '-in', f(`${who}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca-key.pem'), '-CAcreateserial', '-days', '2', '-extfile', f(`${who}.ext`), '-out', f(`${who}-cert.pem`)]);
  }
  return {host: `tcp://127.0.0.1:${await freePort('127.0.0.1')}`, ca: f('ca.pem'), cert: f('client-cert.pem'), key: f('client-key.pem')};
}

export {freePort};
