import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileExtensionOf, isTrace } from '../profiles/profile.js';
import type { ScrapedProfile } from '../profiles/profile.js';
import type { DirectoryConfig } from './kinds/directory.js';
import type { Repository, SendResult } from './repository.js';

const SAFE = /[^A-Za-z0-9._-]/g;

/** A file or folder name from free text: no separators, never `.` or `..`. */
export function safeName(text: string): string {
  const cleaned = text.replace(SAFE, '_').replace(/^\.+/, (dots) => '_'.repeat(dots.length));
  return cleaned === '' ? '_' : cleaned.slice(0, 120);
}

/** `20261125T085800.123Z`: sorts by time, and has no `:` for the file systems that mind. */
export function fileTime(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '');
}

/** How many names a profile tries (`…_2`, `…_3`, …) before the send fails. */
const MAX_NAME_TRIES = 1000;

/**
 * Where a profile lands, relative to the repository's path; another file there
 * already makes it `…_2.pb.gz`, `…_3.pb.gz`, … A Go execution trace ends in
 * `.trace` instead (`go tool trace` opens it).
 */
export function profileFileName(profile: ScrapedProfile): { dir: string; file: string } {
  const instance = profile.labels['instance'] ?? profile.targetId;
  return {
    dir: join(safeName(profile.service), safeName(profile.type)),
    file: `${fileTime(profile.time)}_${safeName(instance)}${fileExtensionOf(profile)}`,
  };
}

export interface DirectoryRepository extends Repository {
  /** Applies retention now; returns what it removed. */
  sweep(): Promise<{ removedFiles: number; removedBytes: number }>;
}

/**
 * `{path}/{service}/{type}/{time}_{instance}.pb.gz` (a trace: `.trace`) plus
 * a `.json` sidecar with the labels. Each file is written to a temp name, synced, and linked to its
 * name, so a reader (or a crash) never sees half a profile and no file is
 * ever replaced: a name taken (the same time twice) gets a counter suffix.
 * Retention by age and total size.
 */
export function createDirectoryRepository(name: string, config: DirectoryConfig, options: { sweepEveryMs?: number } = {}): DirectoryRepository {
  const root = resolve(config.path);
  const maxAge = config.retention?.max_age;
  const maxSize = config.retention?.max_size;
  let sweeping: Promise<{ removedFiles: number; removedBytes: number }> | undefined;
  let timer: NodeJS.Timeout | undefined;

  const sweep = (): Promise<{ removedFiles: number; removedBytes: number }> => {
    sweeping ??= applyRetention(root, maxAge, maxSize).finally(() => {
      sweeping = undefined;
    });
    return sweeping;
  };
  if (maxAge !== undefined || maxSize !== undefined) {
    timer = setInterval(() => void sweep().catch(() => undefined), options.sweepEveryMs ?? 60_000);
    timer.unref();
  }

  return {
    name,
    kind: 'directory',
    async send(profile: ScrapedProfile): Promise<SendResult> {
      const { dir, file } = profileFileName(profile);
      const folder = join(root, dir);
      const sidecar = {
        service: profile.service,
        type: profile.type,
        time: new Date(profile.time).toISOString(),
        ...(profile.durationMs !== undefined ? { duration_ms: profile.durationMs } : {}),
        labels: profile.labels,
        url: profile.url,
        target_id: profile.targetId,
        // a trace has no samples to count
        ...(isTrace(profile) ? {} : { samples: profile.sampleCount }),
      };
      const ext = fileExtensionOf(profile);
      const base = file.slice(0, -ext.length);
      const where = join(folder, file);
      try {
        await mkdir(folder, { recursive: true });
        await publishUnique(folder, base, ext, profile.data, Buffer.from(JSON.stringify(sidecar, null, 2) + '\n'));
        return { status: 'ok' };
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        const hint = e.code === 'ENOSPC' ? ': the disk is full; profiles wait until there is room' : e.code === 'EACCES' || e.code === 'EROFS' ? ': the daemon cannot write there' : '';
        return { status: 'retryable', error: `writing ${where}: ${e.code ?? e.message}${hint}` };
      }
    },
    sweep,
    async close(): Promise<void> {
      if (timer) clearInterval(timer);
      timer = undefined;
      await sweeping?.catch(() => undefined);
    },
  };
}

/** Writes a synced temp file beside `folder`'s files; its name starts with a dot, which retention skips. */
async function writeTemp(folder: string, data: Buffer): Promise<string> {
  const tmp = join(folder, `.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  return tmp;
}

/**
 * Gives the temp file its name, failing with EEXIST when the name is taken.
 * A hard link never replaces a file; where the file system has no hard links,
 * the name is claimed by an exclusive create and the temp file renamed over
 * that empty claim.
 */
async function claim(tmp: string, path: string): Promise<void> {
  try {
    await link(tmp, path);
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
  }
  await (await open(path, 'wx', 0o644)).close();
  await rename(tmp, path);
}

/**
 * The profile under `{base}{ext}` with its sidecar `{base}.json`, else
 * `{base}_2…`: the first name free. The sidecar is claimed first, so a
 * reader that sees a profile file finds its sidecar; a name whose sidecar is
 * taken, or whose profile is, is skipped (a claimed sidecar given back).
 * Returns the name without `ext`.
 */
async function publishUnique(folder: string, base: string, ext: string, data: Buffer, sidecar: Buffer): Promise<string> {
  const temps: string[] = [];
  try {
    temps.push(await writeTemp(folder, sidecar));
    temps.push(await writeTemp(folder, data));
    const [tmpSidecar, tmpData] = temps as [string, string];
    for (let i = 1; i <= MAX_NAME_TRIES; i++) {
      const name = i === 1 ? base : `${base}_${i}`;
      const json = join(folder, `${name}.json`);
      try {
        await claim(tmpSidecar, json);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw err;
      }
      try {
        await claim(tmpData, join(folder, `${name}${ext}`));
        return name;
      } catch (err) {
        await unlink(json).catch(() => undefined);
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    throw new Error(`${MAX_NAME_TRIES} profiles of this target and type already have this time: remove some, or check the target's clock`);
  } finally {
    for (const t of temps) await unlink(t).catch(() => undefined);
  }
}

interface StoredFile {
  path: string;
  size: number;
  mtime: number;
}

async function applyRetention(root: string, maxAge: number | undefined, maxSize: number | undefined): Promise<{ removedFiles: number; removedBytes: number }> {
  const files: StoredFile[] = [];
  for (const service of await readdirSafe(root)) {
    for (const type of await readdirSafe(join(root, service))) {
      const folder = join(root, service, type);
      for (const name of await readdirSafe(folder)) {
        if (name.startsWith('.') || !(name.endsWith('.pb.gz') || name.endsWith('.trace') || name.endsWith('.json'))) continue;
        const st = await stat(join(folder, name)).catch(() => undefined);
        if (st?.isFile()) files.push({ path: join(folder, name), size: st.size, mtime: st.mtimeMs });
      }
    }
  }
  files.sort((a, b) => a.mtime - b.mtime);
  let total = files.reduce((n, f) => n + f.size, 0);
  const now = Date.now();
  let removedFiles = 0;
  let removedBytes = 0;
  for (const f of files) {
    const tooOld = maxAge !== undefined && now - f.mtime > maxAge;
    const tooBig = maxSize !== undefined && total > maxSize;
    if (!tooOld && !tooBig) continue;
    if (await unlink(f.path).then(() => true, () => false)) {
      total -= f.size;
      removedFiles++;
      removedBytes += f.size;
    }
  }
  return { removedFiles, removedBytes };
}

async function readdirSafe(path: string): Promise<string[]> {
  return readdir(path).catch(() => []);
}
