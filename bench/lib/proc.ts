/** Resource use of another process, from Linux's /proc (what `ps` and `top` read). */
import {execFileSync} from 'node:child_process';
import {lstatSync, readdirSync, readFileSync} from 'node:fs';
import {join} from 'node:path';

let ticks: number | undefined;

function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], {encoding: 'utf8'}).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

/** User + system CPU seconds the process has used so far (utime + stime). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // comm (field 2) may hold spaces and parentheses: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`/proc/${pid}/stat: cannot read utime/stime`);
  return (utime + stime) / clockTicks();
}

function statusKiB(pid: number, key: string): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
  if (!m) throw new Error(`/proc/${pid}/status has no ${key}`);
  return Number(m[1]);
}

/** Peak resident set size so far (VmHWM), KiB. */
export function peakRssKiB(pid: number): number {
  return statusKiB(pid, 'VmHWM');
}

/** Current resident set size (VmRSS), KiB. */
export function rssKiB(pid: number): number {
  return statusKiB(pid, 'VmRSS');
}

/** Open file descriptors (entries of /proc/<pid>/fd; needs the same user or root). */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * Bytes under a directory, as `du --apparent-size --bytes` counts them, in all
 * and per entry of its top level (queue, baselines, …). Zero for a directory
 * that does not exist.
 */
export function dirBytes(dir: string): {total: number; byEntry: Record<string, number>} {
  const walk = (path: string): number => {
    let st;
    try {
      st = lstatSync(path);
    } catch {
      return 0;
    }
    if (!st.isDirectory()) return st.size;
    let sum = st.size;
    for (const name of readdirSync(path)) sum += walk(join(path, name));
    return sum;
  };
  const byEntry: Record<string, number> = {};
  let total = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return {total: 0, byEntry};
  }
  for (const name of names) {
    byEntry[name] = walk(join(dir, name));
    total += byEntry[name];
  }
  return {total, byEntry};
}
