import { watch as watchDir } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import picomatch from 'picomatch';
import type { FileConfig } from '../../config/index.js';
import type { Discovered } from '../../targets/index.js';
import { DiscoveryError } from '../provider.js';
import type { Provider, ProviderDeps } from '../provider.js';
import { parseTargetGroups } from './target-groups.js';

interface Pattern {
  readonly dir: string;
  readonly match: (name: string) => boolean;
}

interface FileState {
  /** The last good targets of the file; undefined until it was read once. */
  found: Discovered[] | undefined;
  error: string | undefined;
}

/**
 * Prometheus's file_sd: every file the patterns match, each parsed on its
 * own. A file that cannot be read or parsed keeps its last good targets and
 * reports its error (file:line) while the other files' changes apply; a file
 * that is gone takes its targets with it. The folders are watched, so a
 * change shows within a second; every file is read again on `refresh` too.
 */
export function createFileProvider(config: FileConfig, source: number, deps: ProviderDeps): Provider {
  const where = `discovery[${source}].file`;
  const patterns: Pattern[] = config.files.map((f) => {
    const name = basename(f);
    // Go's filepath.Match: * and ? never cross a /, and match a leading dot too
    const matcher = picomatch(name, { dot: true, nobrace: true, noextglob: true });
    return { dir: dirname(f), match: (n) => matcher(n) };
  });
  const states = new Map<string, FileState>();
  const log = deps.logger.child({ provider: 'file', source: where });

  const listFiles = async (): Promise<string[]> => {
    const files = new Set<string>();
    for (const p of patterns) {
      let names: string[];
      try {
        names = await readdir(p.dir);
      } catch (err) {
        // a folder that is not there (yet) holds no files, as a glob that matches nothing
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') continue;
        throw new DiscoveryError(`${where}: cannot list ${p.dir}: ${(err as Error).message}`, { code: (err as NodeJS.ErrnoException).code, cause: err });
      }
      for (const n of names) if (p.match(n) && /^\.(json|ya?ml)$/i.test(extname(n))) files.add(join(p.dir, n));
    }
    return [...files].sort();
  };

  const readOne = async (file: string): Promise<Discovered[]> => {
    const text = await readBounded(file, config.max_file_size);
    return parseTargetGroups(text, extname(file).toLowerCase() === '.json' ? 'json' : 'yaml', { name: file, meta: { __meta_filepath: file } }, { maxTargets: config.max_targets });
  };

  return {
    kind: 'file',
    source,
    directiveNoun: 'label',
    refreshInterval: config.refresh,
    async refresh(signal: AbortSignal): Promise<Discovered[]> {
      const files = await listFiles();
      const present = new Set(files);
      for (const gone of [...states.keys()].filter((f) => !present.has(f))) {
        log.info({ file: gone, dropped_targets: states.get(gone)?.found?.length ?? 0 }, 'discovery file is gone; its targets are dropped');
        states.delete(gone);
      }
      for (const file of files) {
        signal.throwIfAborted();
        let state = states.get(file);
        if (!state) states.set(file, (state = { found: undefined, error: undefined }));
        try {
          state.found = await readOne(file);
          if (state.error !== undefined) log.info({ file }, 'discovery file is good again');
          state.error = undefined;
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          // one line per new problem: a file rewritten every few seconds while broken does not flood the log
          if (message !== state.error) log.warn({ file, error: message, kept_targets: state.found?.length ?? 0 }, 'discovery file not read; its last good targets stay');
          state.error = message;
        }
      }
      const answer = files.flatMap((f) => states.get(f)?.found ?? []);
      const errors = files.map((f) => states.get(f)?.error).filter((e): e is string => e !== undefined);
      if (errors.length > 0) {
        throw new DiscoveryError(`${where}: ${errors.length === 1 ? errors[0] : `${errors.length} files not read: ${errors.join('; ')}`} (the last good targets of ${errors.length === 1 ? 'that file' : 'those files'} stay)`, { code: 'FileInvalid', answer });
      }
      return answer;
    },
    watch(signal: AbortSignal, changed: () => void): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        const watchers: ReturnType<typeof watchDir>[] = [];
        const stop = (err?: unknown): void => {
          for (const w of watchers) w.close();
          signal.removeEventListener('abort', onAbort);
          if (err === undefined) resolve();
          else reject(err instanceof Error ? err : new Error('the folder watch failed'));
        };
        const onAbort = (): void => stop();
        signal.addEventListener('abort', onAbort);
        try {
          for (const dir of new Set(patterns.map((p) => p.dir))) {
            const mine = patterns.filter((p) => p.dir === dir);
            const w = watchDir(dir, { persistent: false }, (_event, name) => {
              if (name === null || mine.some((p) => p.match(String(name)))) changed();
            });
            w.on('error', (err) => stop(err));
            watchers.push(w);
          }
        } catch (err) {
          // a folder not there yet: the runner watches again with backoff, and refresh still reads on its interval
          stop(new Error(`${where}: cannot watch ${(err as NodeJS.ErrnoException).path ?? 'a folder'}: ${(err as Error).message}`));
        }
        if (signal.aborted) stop();
      });
    },
  };
}

/** The file's text, refused past `max` bytes without reading more than that. */
async function readBounded(file: string, max: number): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    if (size > max) throw new Error(`${file}: ${mib(size)} is over max_file_size (${mib(max)}): split the list, or raise max_file_size`);
    const buffer = Buffer.alloc(Math.min(size, max) + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > max) throw new Error(`${file}: grew past max_file_size (${mib(max)}) while it was read`);
      if (length === buffer.length) break;
    }
    return buffer.subarray(0, length).toString('utf8');
  } finally {
    await handle.close();
  }
}

export function mib(bytes: number): string {
  return `${Number((bytes / 1024 ** 2).toFixed(1))} MiB`;
}
