import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, open, readFile, realpath, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export class StateDirInUseError extends Error {
  override readonly name = 'StateDirInUseError';
  /** The pid the lock names. */
  readonly pid: number;

  constructor(message: string, pid: number) {
    super(message);
    this.pid = pid;
  }
}

const LOCK = '.lock';
/** A takeover is a rename: a claim that old was left by a daemon that died in the middle of one. */
const ABANDONED_CLAIM_MS = 10_000;
/** How long a start may spend on a lock that keeps changing hands. */
const ACQUIRE_DEADLINE_MS = 2 * ABANDONED_CLAIM_MS;

/** Folders whose lock this process is taking now, by real path: a lock naming our own pid is stale, so two opens at once are told apart here. */
const opening = new Set<string>();

/**
 * `queues/.lock` holds the pid of the daemon using the folder: two daemons
 * appending to one spool would corrupt it.
 *
 * Taking it is atomic: the pid goes into a file of our own, which is then
 * hard-linked to `.lock`; link() fails when the name exists, so of daemons
 * starting together exactly one gets it, and no one ever reads a half-written lock.
 *
 * A lock is stale, and taken over, unless its pid is a running daemon. It is not when:
 * - the pid is ours: an earlier process had it (a container started again
 *   gets the same pid);
 * - no process has that pid (a crash, kill -9, a reboot);
 * - /proc/<pid>/cmdline shows another program: neither Node.js, nor the program
 *   we run as, nor pprof-scraper (a container's init, a shell, anything that
 *   reused the pid);
 * - /proc cannot tell (no /proc, or hidden) and the pid is 1: an init.
 *
 * A stale lock is replaced by whoever first links it under a claim name made
 * of its inode number (`.lock.takeover-<inode>`), which can exist once: of
 * daemons that found the same stale lock, one renames its own over it and the
 * others then find that one running.
 */
export async function lockStateDir(root: string): Promise<void> {
  const lock = join(root, LOCK);
  const key = join(await realpath(root), LOCK);
  if (opening.has(key)) throw inUse(lock, process.pid);
  opening.add(key);
  try {
    await acquire(lock);
  } finally {
    opening.delete(key);
  }
}

/** Removes the lock, if it is still ours. */
export async function unlockStateDir(root: string): Promise<void> {
  const lock = join(root, LOCK);
  const pid = Number.parseInt(await readFile(lock, 'utf8').catch(() => ''), 10);
  if (pid === process.pid) await unlink(lock).catch(() => undefined);
}

async function acquire(lock: string): Promise<void> {
  const mine = `${lock}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(mine, `${process.pid}\n`, { flag: 'wx', mode: 0o644 });
  const deadline = Date.now() + ACQUIRE_DEADLINE_MS;
  try {
    while (Date.now() < deadline) {
      try {
        await link(mine, lock);
        return;
      } catch (err) {
        if (codeOf(err) !== 'EEXIST') throw err;
      }
      const current = await readLock(lock);
      // gone meanwhile: its holder stopped, or a takeover is midway
      if (current === undefined) continue;
      if (holderRunning(current.pid)) throw inUse(lock, current.pid);
      if (await takeOver(lock, current.ino, mine)) return;
    }
    throw new Error(`${lock}: could not take the lock within ${ACQUIRE_DEADLINE_MS / 1000} s, it kept changing hands: is another pprof-scraper starting on this state_dir again and again?`);
  } finally {
    await unlink(mine).catch(() => undefined);
  }
}

/** Replaces the stale lock `ino` with ours; false when someone else is doing it or it changed. */
async function takeOver(lock: string, ino: bigint, mine: string): Promise<boolean> {
  const claim = `${lock}.takeover-${ino}`;
  try {
    await link(lock, claim);
  } catch (err) {
    // gone meanwhile: look again
    if (codeOf(err) === 'ENOENT') return false;
    if (codeOf(err) !== 'EEXIST') throw err;
    // a link changes the inode's ctime: the claim's age
    const since = await stat(claim).then((s) => Date.now() - s.ctimeMs, () => 0);
    if (since > ABANDONED_CLAIM_MS) await unlink(claim).catch(() => undefined);
    else await sleep(5);
    return false;
  }
  try {
    // the claim holds whatever .lock was when linked: only if that is the stale one is it ours to replace
    if ((await stat(claim, { bigint: true })).ino !== ino) return false;
    await rename(mine, lock);
    return true;
  } finally {
    await unlink(claim).catch(() => undefined);
  }
}

async function readLock(lock: string): Promise<{ pid: number; ino: bigint } | undefined> {
  let fh;
  try {
    fh = await open(lock, 'r');
  } catch (err) {
    if (codeOf(err) === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const { ino } = await fh.stat({ bigint: true });
    // an unreadable pid (a lock from a crash mid-write) is no one's
    return { pid: Number.parseInt(await fh.readFile('utf8'), 10), ino };
  } finally {
    await fh.close();
  }
}

function holderRunning(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if (codeOf(err) !== 'EPERM') return false;
  }
  const command = commandOf(pid);
  if (command === undefined) return pid !== 1;
  return looksLikeDaemon(command);
}

/** The process's arguments, or undefined when /proc cannot tell. */
function commandOf(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
  } catch {
    return undefined;
  }
}

/** Node.js, the program we run as, or pprof-scraper itself (a bin link, a single binary); an exited process shows no arguments. */
function looksLikeDaemon([program, script]: readonly string[]): boolean {
  if (program === undefined) return false;
  const name = basename(program);
  if (/^node(js)?[\d.]*$/.test(name) || name === basename(process.argv0)) return true;
  return [program, script].some((a) => a !== undefined && basename(a).startsWith('pprof-scraper'));
}

function inUse(lock: string, pid: number): StateDirInUseError {
  const who = pid === process.pid ? 'this process, which is opening it already' : `another pprof-scraper (pid ${pid}, see ${lock})`;
  return new StateDirInUseError(`state_dir ${JSON.stringify(dirname(dirname(lock)))} is in use by ${who}: give each daemon its own state_dir`, pid);
}

function codeOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}
