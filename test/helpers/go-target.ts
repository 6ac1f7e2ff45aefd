/**
 * The real Go peer: builds test/go/target (net/http/pprof with every
 * profile type busy) and runs it on loopback for a test.
 */
import {execFile, spawn} from 'node:child_process';
import {createHash} from 'node:crypto';
import {constants} from 'node:fs';
import {access, mkdir, readFile, rename, rm, stat} from 'node:fs/promises';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import {request} from 'undici';
import {requirePeer} from './peers.js';

export {requirePeer} from './peers.js';
export type {PeerName} from './peers.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const GO_TARGET_DIR = join(REPO_ROOT, 'test', 'go', 'target');
export const CACHE_DIR = join(REPO_ROOT, 'node_modules', '.cache', 'pprof-scraper');

const BUILD_TIMEOUT_MS = 180_000;
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

export class GoTargetError extends Error {
  override readonly name = 'GoTargetError';
}

function run(file: string, args: string[], opts: {cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number}): Promise<{stdout: string; stderr: string}> {
  return new Promise((resolve, reject) => {
    execFile(file, args, {...opts, maxBuffer: 16 * 1024 * 1024}, (err, stdout, stderr) => {
      if (err) {
        const failure: Error & {stdout?: string; stderr?: string} = err;
        failure.stdout = stdout;
        failure.stderr = stderr;
        reject(failure);
      }
      else resolve({stdout, stderr});
    });
  });
}

let goCheck: Promise<{available: boolean; why: string}> | undefined;

/** Whether `go version` runs; the reason when it does not. */
export function goStatus(): Promise<{available: boolean; why: string}> {
  goCheck ??= run('go', ['version'], {timeout: 30_000, env: goEnv(process.env.HOME)}).then(
    ({stdout}) => ({available: true, why: stdout.trim()}),
    (err: NodeJS.ErrnoException & {stderr?: string}) => ({
      available: false,
      why: err.code === 'ENOENT' ? 'go not found on PATH' : `go version failed: ${(err.stderr ?? err.message).trim()}`,
    }),
  );
  return goCheck;
}

export async function goAvailable(): Promise<boolean> {
  return (await goStatus()).available;
}

/** The node:test `skip` value for tests that need Go (see peers.ts). */
export async function skipWithoutGo(): Promise<string | false> {
  const {available, why} = await goStatus();
  return requirePeer('go', available, why);
}

// Go wants a writable build cache (GOCACHE, default under $HOME) and GOPATH
// for module downloads; in sandboxes HOME is often read-only or unset, so
// both move under our cache folder then. GOPROXY=off and GOTOOLCHAIN=local
// because the target has no dependencies and a test must never fetch.
function goEnv(home: string | undefined, writableHome = true): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {...process.env, CGO_ENABLED: '0', GOPROXY: 'off', GOTOOLCHAIN: 'local'};
  if (!home || !writableHome) {
    env.GOCACHE ??= join(CACHE_DIR, 'go-build');
    env.GOPATH ??= join(CACHE_DIR, 'gopath');
  }
  return env;
}

async function isWritable(dir: string | undefined): Promise<boolean> {
  if (!dir) return false;
  try {
    await access(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The environment `go` runs in here, for a test that builds a Go program of its own: offline, a writable cache. */
export async function goCommandEnv(): Promise<NodeJS.ProcessEnv> {
  return goEnv(process.env.HOME, await isWritable(process.env.HOME));
}

let built: Promise<string> | undefined;

/**
 * Builds the target once per process (and once per source version across
 * processes: the binary is cached under node_modules/.cache/pprof-scraper,
 * named by a hash of the sources) and returns the binary's path. Static
 * (CGO_ENABLED=0) so it also runs in a scratch container image.
 */
export function buildGoTarget(): Promise<string> {
  built ??= doBuild().catch((err: unknown) => {
    built = undefined;
    throw err;
  });
  return built;
}

async function doBuild(): Promise<string> {
  const hash = createHash('sha256');
  for (const file of ['main.go', 'go.mod']) hash.update(file).update(await readFile(join(GO_TARGET_DIR, file)));
  const out = join(CACHE_DIR, `go-target-${hash.digest('hex').slice(0, 16)}`);
  try {
    if ((await stat(out)).isFile()) return out;
  } catch {
    // Not built yet.
  }
  const {available, why} = await goStatus();
  if (!available) throw new GoTargetError(`cannot build ${GO_TARGET_DIR}: ${why}`);
  await mkdir(CACHE_DIR, {recursive: true});
  // node:test runs test files in parallel processes: build to a private name
  // and rename, so another process never runs a half-written binary.
  const tmp = `${out}.${process.pid}.tmp`;
  const env = goEnv(process.env.HOME, await isWritable(process.env.HOME));
  try {
    await run('go', ['build', '-trimpath', '-o', tmp, '.'], {cwd: GO_TARGET_DIR, env, timeout: BUILD_TIMEOUT_MS});
    await rename(tmp, out);
  } catch (err) {
    await rm(tmp, {force: true});
    const stderr = (err as {stderr?: string}).stderr?.trim();
    throw new GoTargetError(`go build in ${GO_TARGET_DIR} failed: ${stderr || (err as Error).message}`, {cause: err});
  }
  return out;
}

export interface GoTargetOptions {
  /** Loopback address to bind, e.g. 127.0.0.1 (default) or 127.0.0.7. */
  host?: string;
  /** Scale of the background work (default 1). */
  work?: number;
  /** Allocate from this many distinct call stacks (see main.go's -allocsites). */
  allocSites?: number;
}

export interface GoTarget {
  /** host:port it listens on. */
  readonly address: string;
  readonly pid: number;
  /** Sends SIGTERM to this target's PID and waits for it to exit (SIGKILL after 5 s). Idempotent. */
  stop(): Promise<void>;
}

const running = new Set<number>();
// A test process that dies with targets still up would leave them running;
// only our own children's PIDs are in the set.
process.once('exit', () => {
  for (const pid of running) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
});

/** Starts the target and resolves once it prints its address. */
export async function startGoTarget(opts: GoTargetOptions = {}): Promise<GoTarget> {
  const bin = await buildGoTarget();
  const host = opts.host ?? '127.0.0.1';
  const listen = host.includes(':') ? `[${host}]:0` : `${host}:0`;
  const args = ['-listen', listen, '-work', String(opts.work ?? 1)];
  if (opts.allocSites !== undefined) args.push('-allocsites', String(opts.allocSites));
  const child = spawn(bin, args, {stdio: ['ignore', 'pipe', 'pipe']});
  const pid = child.pid;
  if (pid === undefined) {
    throw new GoTargetError(`could not start ${bin}: ${await new Promise<string>((r) => child.once('error', (e) => r(e.message)))}`);
  }
  running.add(pid);

  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    if (stderr.length < 64 * 1024) stderr += s;
  });
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      running.delete(pid);
      resolve();
    });
  });

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    // Held again while we wait, or an otherwise idle test process could exit
    // before the child's exit is seen.
    child.ref();
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    timer.unref();
    await exited;
    clearTimeout(timer);
  };

  const address = await new Promise<string>((resolve, reject) => {
    let stdout = '';
    const fail = (what: string): void => {
      cleanup();
      void stop();
      reject(new GoTargetError(`go target (${bin} ${args.join(' ')}, pid ${pid}) ${what}; stderr: ${stderr.trim() || '(empty)'}`));
    };
    const onData = (s: string): void => {
      stdout += s;
      const m = /^listening on (\S+)\r?\n/m.exec(stdout);
      if (m) {
        cleanup();
        resolve(m[1]!);
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void =>
      fail(`exited before listening (code ${code}, signal ${signal})`);
    const onError = (err: Error): void => fail(`failed: ${err.message}`);
    const timer = setTimeout(() => fail(`printed no "listening on" line within ${START_TIMEOUT_MS} ms (stdout: ${JSON.stringify(stdout)})`), START_TIMEOUT_MS);
    const cleanup = (): void => {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
      // Keep draining so a chatty child never blocks on a full pipe.
      child.stdout.resume();
    };
    child.stdout.setEncoding('utf8').on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });

  // The pipes would otherwise keep the test process alive until stop().
  child.unref();
  for (const pipe of [child.stdout, child.stderr]) (pipe as unknown as {unref?: () => void}).unref?.();
  return {address, pid, stop};
}

/**
 * Whether a Go target at `address` is inside net/http/pprof's `handler`
 * (Profile: a CPU profile; Trace: an execution trace) past its start, waiting
 * out its seconds: from that moment a second one is refused. Read from the
 * goroutine dump, which neither profiling nor tracing minds.
 */
export async function goHandlerRunning(address: string, handler: 'Profile' | 'Trace'): Promise<boolean> {
  const res = await request(`http://${address}/debug/pprof/goroutine?debug=2`);
  const dump = await res.body.text();
  return dump.split('\n\n').some((g) => g.includes('net/http/pprof.sleep(') && g.includes(`net/http/pprof.${handler}(`));
}
