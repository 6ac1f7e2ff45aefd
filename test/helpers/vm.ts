/**
 * A Debian root (debian-root.ts) booted as a VM of its own: systemd-nspawn
 * with systemd as its PID 1 and a private network namespace (loopback only),
 * so `systemctl enable --now` really starts a unit, with its hardening, and
 * the VM's 127.0.0.1:10101 is its own, whatever else the machine runs.
 * Commands run inside with nsenter, as root, as from a shell on the VM.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { run, which } from './debian-root.js';
import type { Ran } from './debian-root.js';
import { waitUntil } from './wait.js';

/** A login shell's environment on the VM. */
const SHELL_ENV = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  HOME: '/root',
  USER: 'root',
  LOGNAME: 'root',
  SHELL: '/bin/bash',
  LANG: 'C.UTF-8',
};

export interface Vm {
  /** The container's PID 1 (systemd), as this machine numbers it. */
  readonly leader: number;
  /** Its network namespace, for `nsenter --net=`. */
  readonly netns: string;
  /** Runs a bash script on the VM as root, in /root; never throws for an exit code. */
  sh(script: string, opts?: { timeoutMs?: number }): Promise<Ran>;
  /** Starts a program of this machine inside the VM's network namespace only (its files stay this machine's). */
  spawnInNetns(file: string, args: readonly string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): ChildProcess;
  /** What systemd-nspawn printed (the console). */
  console(): string;
  /** Shuts the VM down (SIGTERM to systemd-nspawn: a clean halt), SIGKILL after 30 s. */
  stop(): Promise<void>;
}

/** What this machine lacks to boot a VM; empty when nothing. */
export async function vmMissing(): Promise<string[]> {
  const missing: string[] = [];
  if (!(await which('systemd-nspawn'))) missing.push('systemd-nspawn not found (Debian: apt-get install systemd-container)');
  if (!(await which('nsenter'))) missing.push('nsenter not found (Debian: util-linux)');
  return missing;
}

async function children(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.trim().split(/\s+/).filter(Boolean).map(Number);
}

/** The first process named `systemd` below `pid`. */
async function findInit(pid: number): Promise<number | undefined> {
  const queue = await children(pid);
  while (queue.length > 0) {
    const p = queue.shift()!;
    if ((await readFile(`/proc/${p}/comm`, 'utf8').catch(() => '')).trim() === 'systemd') return p;
    queue.push(...(await children(p)));
  }
  return undefined;
}

export async function bootVm(root: string): Promise<Vm> {
  const nspawn = spawn('systemd-nspawn', ['--directory', root, '--register=no', '--keep-unit', '--private-network', '--boot', '--quiet'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, SYSTEMD_COLORS: '0' },
  });
  let out = '';
  nspawn.stdout.setEncoding('utf8').on('data', (s: string) => (out = (out + s).slice(-64 * 1024)));
  nspawn.stderr.setEncoding('utf8').on('data', (s: string) => (out = (out + s).slice(-64 * 1024)));
  const exited = new Promise<void>((resolve) => nspawn.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (nspawn.exitCode !== null || nspawn.signalCode !== null) return;
    nspawn.kill('SIGTERM');
    const timer = setTimeout(() => nspawn.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    const pid = nspawn.pid;
    if (pid === undefined) throw new Error('systemd-nspawn did not start');
    const leader = await waitUntil(() => `systemd booting in ${root} (console: ${out})`, async () => (nspawn.exitCode === null ? findInit(pid) : Promise.reject(new Error(`systemd-nspawn exited: ${out}`))), { timeoutMs: 30_000 });
    const sh = (script: string, opts: { timeoutMs?: number } = {}): Promise<Ran> =>
      run('nsenter', [`--target=${leader}`, '--all', '--', '/usr/bin/env', '-i', ...Object.entries(SHELL_ENV).map(([k, v]) => `${k}=${v}`), '/bin/bash', '-e', '-c', `cd /root\n${script}`], {
        env: {},
        timeoutMs: opts.timeoutMs ?? 120_000,
      });
    // (--wait would need D-Bus, which a minimal root lacks; systemctl as root talks to systemd's own socket)
    let state = '';
    await waitUntil(
      () => `the VM to finish booting: systemctl is-system-running says ${state}\n${out}`,
      async () => {
        const r = await sh('systemctl is-system-running || true', { timeoutMs: 30_000 });
        state = `${r.stdout}${r.stderr}`.trim();
        return /^(running|degraded)$/.test(state);
      },
      { timeoutMs: 60_000, everyMs: 250 },
    );
    return {
      leader,
      netns: `/proc/${leader}/ns/net`,
      sh,
      spawnInNetns: (file, args, opts) => spawn('nsenter', [`--net=/proc/${leader}/ns/net`, '--', file, ...args], { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] }),
      console: () => out,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
