import { createHash } from 'node:crypto';
import { lstatSync, watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { ConfigLoadError, formatConfigError, loadEmbeddedDefault, parseConfig, readConfigText } from './config/index.js';
import type { ConfigError, LoadedConfig } from './config/index.js';
import type { ApplyReport } from './daemon.js';
import type { Metrics } from './metrics.js';
import { redactUrl } from './redact.js';
import { sendJson, sendText } from './server/server.js';
import type { Handler } from './server/server.js';

/** What asked for a reload. */
export type ReloadTrigger = 'start' | 'signal' | 'file' | 'http';

export type ReloadResult =
  | { readonly status: 'applied'; readonly hash: string; readonly report: ApplyReport }
  /** The file watcher saw a change event but the text is what was last tried. */
  | { readonly status: 'unchanged'; readonly hash: string }
  | { readonly status: 'invalid'; readonly errors: readonly ConfigError[] }
  /** The file is valid but applying it failed (a listen address in use...): the old config runs on. */
  | { readonly status: 'failed'; readonly error: string };

/** What the reloader drives: the daemon. */
export interface Reloadable {
  apply(loaded: LoadedConfig): Promise<ApplyReport>;
}

export interface ReloaderOptions {
  readonly daemon: Reloadable;
  /** The config file; undefined runs on the embedded default. */
  readonly path: string | undefined;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly env?: NodeJS.ProcessEnv;
}

const DEFAULT_DEBOUNCE_MS = 300;

/**
 * Reads, validates and applies the config, for every trigger (start, SIGHUP,
 * a file change, POST /-/reload), one at a time: a reload that arrives while
 * another runs waits for it. The file is validated in full before anything
 * changes; an invalid file leaves the running config alone.
 */
export class Reloader {
  readonly #options: ReloaderOptions;
  #chain: Promise<unknown> = Promise.resolve();
  /** sha256 of the text last tried, by any trigger: the watcher skips events that did not change it. */
  #lastTried: string | undefined;
  #closed = false;

  constructor(options: ReloaderOptions) {
    this.#options = options;
  }

  reload(trigger: ReloadTrigger): Promise<ReloadResult> {
    const run = this.#chain
      .then(() => (this.#closed ? { status: 'failed' as const, error: 'the daemon is stopping; reloads are off' } : this.#reloadOnce(trigger)))
      // SIGHUP and the file watch have no one to hand a rejection to: a bug
      // here must still leave the old config running, counted and logged
      .catch((err: unknown): ReloadResult => {
        const error = redactUrl(err instanceof Error ? err.message : String(err));
        this.#options.logger.error({ trigger, error }, 'reload failed; the old config runs on');
        this.#count(trigger, 'failed');
        return { status: 'failed', error };
      });
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** Refuses further reloads and waits for the one running, so shutdown never races an apply. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#chain;
  }

  async #reloadOnce(trigger: ReloadTrigger): Promise<ReloadResult> {
    const { logger, metrics, daemon } = this.#options;
    const loaded = await this.#load();
    if (!('config' in loaded)) {
      if (trigger === 'file' && loaded.hash !== undefined && loaded.hash === this.#lastTried) return { status: 'unchanged', hash: loaded.hash };
      this.#lastTried = loaded.hash;
      for (const e of loaded.errors) logger.error({ file: e.source, line: e.line, column: e.column, path: e.path, trigger }, e.message);
      if (trigger === 'start') logger.fatal({ errors: loaded.errors.length }, 'the config is not valid; not starting');
      else logger.error({ trigger, errors: loaded.errors.length }, 'reload refused: the config is not valid; the old config runs on');
      this.#count(trigger, 'invalid');
      return { status: 'invalid', errors: loaded.errors };
    }
    if (trigger === 'file' && loaded.hash === this.#lastTried) return { status: 'unchanged', hash: loaded.hash };
    this.#lastTried = loaded.hash;
    let report: ApplyReport;
    try {
      report = await daemon.apply(loaded);
    } catch (err) {
      const error = redactUrl(err instanceof Error ? err.message : String(err));
      if (trigger === 'start') logger.fatal({ error }, 'could not start');
      else logger.error({ trigger, error }, 'reload failed; the old config runs on');
      this.#count(trigger, 'failed');
      return { status: 'failed', error };
    }
    metrics.configHash.set(hashToNumber(loaded.hash));
    metrics.configLastReloadSuccessTimestamp.set(Date.now() / 1000);
    this.#count(trigger, 'applied');
    if (trigger !== 'start') logger.info({ trigger, config: loaded.source, hash: loaded.hash.slice(0, 12), ...report }, changed(report) ? 'config reloaded' : 'config reloaded: nothing changed');
    return { status: 'applied', hash: loaded.hash, report };
  }

  #count(trigger: ReloadTrigger, result: 'applied' | 'invalid' | 'failed'): void {
    this.#options.metrics.configLastReloadSuccessful.set(result === 'applied' ? 1 : 0);
    if (trigger !== 'start') this.#options.metrics.configReloads.inc({ trigger, result });
  }

  async #load(): Promise<LoadedConfig | { errors: readonly ConfigError[]; hash: string | undefined }> {
    const { path, env } = this.#options;
    const opts = env ? { env } : {};
    if (path === undefined) return loadEmbeddedDefault(opts);
    const read = await readConfigText(path);
    if ('error' in read) return { errors: [read.error], hash: undefined };
    try {
      return parseConfig(read.text, path, { ...opts, baseDir: dirname(resolve(path)) });
    } catch (err) {
      // parseConfig throws nothing else; were it to, the old config must still run on
      const errors = err instanceof ConfigLoadError ? err.errors : [{ source: path, line: 1, column: 1, path: '', message: redactUrl(`the config could not be read: ${String(err)}`) }];
      return { errors, hash: sha256(read.text) };
    }
  }

  /**
   * Reloads when the config file changes. Watches the folder, not the file:
   * editors and config managers write a new file and rename it over the old
   * one, which a watch on the old inode never sees. Events are debounced (an
   * editor's save is several of them) and a change that leaves the text as
   * it was is ignored.
   */
  watch(options: { debounceMs?: number } = {}): ConfigWatcher {
    const path = this.#options.path;
    if (path === undefined) return { close: () => undefined };
    const logger = this.#options.logger;
    const file = resolve(path);
    const name = basename(file);
    // a symlinked file (a Kubernetes-style ..data swap) changes through other names
    let anyName = false;
    try {
      anyName = lstatSync(file).isSymbolicLink();
    } catch {
      // not there now: its creation is an event like any other
    }
    const debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    let timer: NodeJS.Timeout | undefined;
    let closed = false;
    const fire = (): void => {
      timer = undefined;
      if (closed) return;
      this.reload('file').then(
        (r) => {
          if (r.status === 'unchanged') logger.debug({ file }, 'config file touched; its text did not change');
        },
        (err: unknown) => logger.error({ error: err instanceof Error ? err.message : String(err) }, 'reload after a file change failed'),
      );
    };
    let watcher: FSWatcher;
    try {
      watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
        if (!anyName && changed !== null && changed !== name) return;
        clearTimeout(timer);
        timer = setTimeout(fire, debounceMs);
        timer.unref();
      });
    } catch (err) {
      logger.warn({ file, error: err instanceof Error ? err.message : String(err) }, 'cannot watch the config folder; reload with SIGHUP (or POST /-/reload with server.enable_reload)');
      return { close: () => undefined };
    }
    watcher.on('error', (err) => {
      logger.warn({ file, error: err.message }, 'watching the config folder stopped; reload with SIGHUP (or POST /-/reload with server.enable_reload)');
    });
    return {
      close: () => {
        closed = true;
        clearTimeout(timer);
        watcher.close();
      },
    };
  }
}

export interface ConfigWatcher {
  close(): void;
}

/**
 * POST /-/reload (the listener takes it only with server.enable_reload, and
 * never from another web site): 200 with what changed; 400 with every error
 * (file:line:column: path: message), one a line, when the file is invalid;
 * 500 when a valid file could not be applied. `?format=json` or an
 * `Accept: application/json` header answers JSON instead.
 */
export function reloadRoute(reloader: Reloader): Handler {
  return async (req, res, url) => {
    const json = url.searchParams.get('format') === 'json' || (req.headers.accept ?? '').includes('application/json');
    const result = await reloader.reload('http');
    switch (result.status) {
      case 'applied':
      case 'unchanged':
        if (json) sendJson(res, 200, result);
        else sendText(res, 200, `config reloaded (sha256 ${result.hash.slice(0, 12)})\n`);
        return;
      case 'invalid':
        if (json) sendJson(res, 400, { status: 'invalid', errors: result.errors.map((e) => ({ ...e, text: formatConfigError(e) })) });
        else sendText(res, 400, `reload refused: the config is not valid; the old config runs on\n${result.errors.map(formatConfigError).join('\n')}\n`);
        return;
      case 'failed':
        if (json) sendJson(res, 500, result);
        else sendText(res, 500, `reload failed; the old config runs on: ${result.error}\n`);
        return;
    }
  };
}

/** Whether an apply changed anything, for the log. */
export function changed(report: ApplyReport): boolean {
  const { providers, repositories, targets } = report;
  return (
    providers.started + providers.stopped > 0 ||
    repositories.added.length + repositories.removed.length + repositories.swapped.length > 0 ||
    targets.added + targets.removed > 0 ||
    report.listen !== undefined ||
    report.server !== undefined
  );
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The first 48 bits of a hex hash: exact in a float64, as a gauge carries it. */
export function hashToNumber(hex: string): number {
  return Number.parseInt(hex.slice(0, 12), 16);
}
