/**
 * Child processes of the orchestrator: spawned directly (no shell, no npm
 * wrapper) so the PID we measure and signal is the process doing the work.
 */
import {spawn} from 'node:child_process';
import {createWriteStream} from 'node:fs';
import type {WriteStream} from 'node:fs';

export interface Child {
  readonly name: string;
  readonly pid: number;
  /** Resolves when the process has exited. */
  readonly exited: Promise<{code: number | null; signal: NodeJS.Signals | null}>;
  isRunning(): boolean;
  /** The last 256 KiB written to stdout. */
  stdout(): string;
  /** The last 4 KiB of stderr, for error messages. */
  stderrTail(): string;
  /** Resolves with the first stdout line matching re; rejects on exit or timeout. */
  waitForLine(re: RegExp, timeoutMs: number): Promise<RegExpExecArray>;
  /** SIGTERM to this PID, SIGKILL after graceMs; resolves once it has exited. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Map<number, Child>();
const STDOUT_KEEP = 256 * 1024;

/** Every child still running, so an interrupted orchestrator can stop them by PID. */
export function liveChildren(): Child[] {
  return [...live.values()];
}

export function startChild(name: string, command: string, args: string[], opts: {cwd?: string; env?: NodeJS.ProcessEnv; logPath?: string} = {}): Child {
  const proc = spawn(command, args, {cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe']});
  if (proc.pid === undefined) throw new Error(`${name}: could not start ${command} ${args.join(' ')}`);
  const pid = proc.pid;
  const log: WriteStream | undefined = opts.logPath ? createWriteStream(opts.logPath) : undefined;
  let out = '';
  let errTail = '';
  let status: {code: number | null; signal: NodeJS.Signals | null} | undefined;
  const lineWaiters = new Set<() => void>();

  proc.stdout.setEncoding('utf8').on('data', (s: string) => {
    // The daemon logs to stdout: keep a tail, the log file has the rest.
    out += s;
    if (out.length > STDOUT_KEEP) out = out.slice(-STDOUT_KEEP);
    log?.write(s);
    for (const w of lineWaiters) w();
  });
  proc.stderr.setEncoding('utf8').on('data', (s: string) => {
    errTail = (errTail + s).slice(-4096);
    log?.write(s);
  });
  const exited = new Promise<{code: number | null; signal: NodeJS.Signals | null}>((resolve) => {
    proc.once('error', (err) => {
      errTail += `\nspawn error: ${err.message}`;
    });
    proc.once('close', (code, signal) => {
      status = {code, signal};
      live.delete(pid);
      log?.end();
      for (const w of lineWaiters) w();
      resolve(status);
    });
  });

  const child: Child = {
    name,
    pid,
    exited,
    isRunning: () => status === undefined,
    stdout: () => out,
    stderrTail: () => errTail.trim(),
    waitForLine(re, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          for (const line of out.split('\n')) {
            const m = re.exec(line);
            if (m) {
              done();
              resolve(m);
              return;
            }
          }
          if (status) {
            done();
            reject(new Error(`${name} (pid ${pid}) exited (code ${status.code}, signal ${status.signal}) before printing ${re}; stderr: ${errTail.trim() || '(empty)'}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${name} (pid ${pid}) printed nothing matching ${re} within ${timeoutMs} ms; stderr: ${errTail.trim() || '(empty)'}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          lineWaiters.delete(check);
        };
        lineWaiters.add(check);
        check();
      });
    },
    async stop(graceMs = 10_000) {
      if (status) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  live.set(pid, child);
  return child;
}
