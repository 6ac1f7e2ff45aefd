import type { Logger } from 'pino';
import type { Config, LoadedConfig } from './config/index.js';
import { identityOf } from './config/index.js';
import { DiscoveryManager } from './discovery/index.js';
import type { DiscoveryProblem, ProviderFactory } from './discovery/index.js';
import { createMetrics } from './metrics.js';
import type { Metrics } from './metrics.js';
import { createFanOut, createMemoryOutbox, createRepository, repositoryCommonOf, repositoryNameOf } from './repositories/index.js';
import type { Delivery, Outbox, Repository } from './repositories/index.js';
import { clientSettingsFor, createTargetClient } from './scrape/clients.js';
import type { TargetClient } from './scrape/clients.js';
import { Scheduler } from './scrape/scheduler.js';
import type { Clock, ScrapeTask } from './scrape/scheduler.js';
import { scrapeProfile } from './scrape/scraper.js';
import { buildTargets, targetsReport } from './targets/index.js';
import type { BuildResult, TargetsReport } from './targets/index.js';
import { pprofRoutes, sendJson, sendText, startStatusServer } from './server/server.js';
import type { Handler, StatusServer } from './server/server.js';

/** The last scrape of one target × type, as /targets shows it. */
export interface LastScrape {
  readonly time: string;
  readonly durationMs: number;
  readonly bytes: number;
  readonly result: string;
  readonly error?: string;
}

export interface DaemonOptions {
  readonly logger: Logger;
  readonly metrics?: Metrics;
  readonly providerFactory?: ProviderFactory;
  readonly clock?: Clock;
  /** Wraps a repository in its outbox; the default keeps profiles in memory with a few retries. */
  readonly outboxFactory?: (repository: Repository, config: Config, entryIndex: number, deps: { logger: Logger; metrics: Metrics }) => Promise<Outbox>;
}

interface RepositorySlot {
  readonly identity: string;
  readonly outbox: Outbox;
  readonly repository: Repository;
}

/** What one apply() changed, for the log. */
export interface ApplyReport {
  readonly providers: { started: number; stopped: number; kept: number };
  readonly repositories: { added: string[]; removed: string[]; swapped: string[]; kept: string[] };
}

const OUTBOX_DEFAULTS = { maxAttempts: 5, parallelism: 8, maxBytes: 256 * 1024 ** 2 };
const SHUTDOWN_SCRAPE_DEADLINE_MS = 10_000;
const SHUTDOWN_SEND_DEADLINE_MS = 5_000;

/**
 * Wires the stages: discovery → target builder → scheduler → scraper →
 * delivery → repositories. apply(config) is both the start and a reload.
 */
export class Daemon {
  readonly metrics: Metrics;
  readonly #logger: Logger;
  readonly #options: DaemonOptions;
  #config: Config | undefined;
  #loaded: LoadedConfig | undefined;
  #scheduler: Scheduler | undefined;
  #discovery: DiscoveryManager | undefined;
  #clients = new Map<number, TargetClient & { close(): Promise<void> }>();
  #repositories = new Map<string, RepositorySlot>();
  #delivery: Delivery = createFanOut(new Map());
  #server: StatusServer | undefined;
  #current: BuildResult = { targets: [], dropped: [] };
  #rebuildTimer: NodeJS.Timeout | undefined;
  readonly #lastScrapes = new Map<string, LastScrape>();
  readonly #extraRoutes = new Map<string, Handler>();
  #stopping: Promise<void> | undefined;

  constructor(options: DaemonOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.metrics = options.metrics ?? createMetrics();
  }

  get config(): Config | undefined {
    return this.#config;
  }

  get loaded(): LoadedConfig | undefined {
    return this.#loaded;
  }

  /** The status listener's real address, once started. */
  get serverAddress(): string | undefined {
    return this.#server?.address;
  }

  /** Adds a route to the status listener (before the first apply). */
  addRoute(key: string, handler: Handler): void {
    this.#extraRoutes.set(key, handler);
  }

  /** Config loaded and every provider tried its first refresh. */
  get ready(): boolean {
    return this.#config !== undefined && (this.#discovery?.ready ?? false);
  }

  /** Starts the daemon on a config, or moves a running one to a new config. */
  async apply(loaded: LoadedConfig): Promise<ApplyReport> {
    const config = loaded.config;
    const first = this.#config === undefined;

    const clients = new Map<number, TargetClient & { close(): Promise<void> }>();
    for (let source = 0; source < config.discovery.length; source++) {
      clients.set(source, await createTargetClient(clientSettingsFor(config, source)));
    }
    const repositories = await this.#applyRepositories(config);

    const oldClients = this.#clients;
    this.#clients = clients;
    this.#config = config;
    this.#loaded = loaded;

    if (!this.#scheduler) {
      this.#scheduler = new Scheduler(
        { concurrency: config.scrape.concurrency, ...(this.#options.clock ? { clock: this.#options.clock } : {}) },
        {
          run: (task, planned, signal) => this.#scrape(task, planned, signal),
          onSkipped: (task) => {
            this.metrics.skippedTicks.inc({ type: task.profile.type });
            this.#logger.debug({ target: task.target.address, type: task.profile.type }, 'tick skipped: the previous scrape still runs');
          },
          onStarted: (_task, lateness) => this.metrics.lateness.observe(Math.max(0, lateness) / 1000),
        },
      );
    } else {
      this.#scheduler.setConcurrency(config.scrape.concurrency);
    }
    this.#discovery ??= new DiscoveryManager({
      logger: this.#logger,
      metrics: this.metrics,
      onChange: () => this.#scheduleRebuild(),
      ...(this.#options.providerFactory ? { factory: this.#options.providerFactory } : {}),
    });
    const providers = await this.#discovery.apply(config.discovery);
    this.#rebuild();

    if (first) {
      this.#server = await startStatusServer(config.server.listen, this.#routes(), this.#logger);
      this.#logger.info({ listen: this.#server.address }, 'status listener up');
    }
    // agents of the old config finish what they carry, then close
    for (const c of oldClients.values()) void c.close().catch(() => undefined);
    return { providers, repositories };
  }

  async #applyRepositories(config: Config): Promise<ApplyReport['repositories']> {
    const next = new Map<string, RepositorySlot>();
    const added: string[] = [];
    const swapped: string[] = [];
    const kept: string[] = [];
    const created: RepositorySlot[] = [];
    try {
      for (let i = 0; i < config.repositories.length; i++) {
        const entry = config.repositories[i];
        if (!entry) continue;
        const name = repositoryNameOf(entry);
        const identity = identityOf(entry);
        const existing = this.#repositories.get(name);
        if (existing && existing.identity === identity) {
          next.set(name, existing);
          kept.push(name);
          continue;
        }
        const repository = await createRepository(entry);
        const common = repositoryCommonOf(entry);
        const outbox = this.#options.outboxFactory
          ? await this.#options.outboxFactory(repository, config, i, { logger: this.#logger, metrics: this.metrics })
          : createMemoryOutbox(repository, {
              ...OUTBOX_DEFAULTS,
              maxBytes: Math.min(OUTBOX_DEFAULTS.maxBytes, common.queue.max_size),
              policy: { initialMs: common.retry.initial_backoff, maxMs: common.retry.max_backoff },
              timeoutMs: common.timeout,
              logger: this.#logger,
              metrics: this.metrics,
            });
        const slot = { identity, outbox, repository };
        created.push(slot);
        next.set(name, slot);
        (existing ? swapped : added).push(name);
      }
    } catch (err) {
      await Promise.all(created.map(async (s) => { await s.outbox.close(0); await s.repository.close(); }));
      throw err;
    }
    const old = this.#repositories;
    this.#repositories = next;
    this.#delivery = createFanOut(new Map([...next].map(([n, s]) => [n, s.outbox])));
    const removed = [...old.keys()].filter((n) => !next.has(n));
    // outboxes that were replaced or removed still deliver what they hold
    for (const [name, slot] of old) {
      if (next.get(name) === slot) continue;
      void slot.outbox
        .close(SHUTDOWN_SEND_DEADLINE_MS * 6)
        .then(() => slot.repository.close())
        .catch(() => undefined);
    }
    return { added, removed, swapped, kept };
  }

  #scheduleRebuild(): void {
    if (this.#rebuildTimer) return;
    this.#rebuildTimer = setTimeout(() => {
      this.#rebuildTimer = undefined;
      this.#rebuild();
    }, 20);
    this.#rebuildTimer.unref();
  }

  #rebuild(): void {
    const config = this.#config;
    if (!config || !this.#discovery || !this.#scheduler || this.#stopping) return;
    const result = buildTargets(config, this.#discovery.groups());
    this.#current = result;
    const change = this.#scheduler.update(result.targets);
    const byProvider = new Map<string, number>();
    for (const t of result.targets) byProvider.set(t.provider, (byProvider.get(t.provider) ?? 0) + 1);
    this.metrics.targets.reset();
    for (const [provider, n] of byProvider) this.metrics.targets.set({ provider }, n);
    this.metrics.droppedTargets.reset();
    const droppedBy = new Map<string, number>();
    for (const d of result.dropped) droppedBy.set(d.provider, (droppedBy.get(d.provider) ?? 0) + 1);
    for (const [provider, n] of droppedBy) this.metrics.droppedTargets.set({ provider }, n);
    if (change.added + change.removed + change.changed > 0) {
      this.#logger.info({ targets: result.targets.length, dropped: result.dropped.length, loops_added: change.added, loops_removed: change.removed, loops_changed: change.changed }, 'targets updated');
    }
    const live = new Set(result.targets.flatMap((t) => t.profiles.map((p) => `${t.id}/${p.type}`)));
    for (const key of this.#lastScrapes.keys()) if (!live.has(key)) this.#lastScrapes.delete(key);
  }

  async #scrape(task: ScrapeTask, _planned: number, signal: AbortSignal): Promise<void> {
    const config = this.#config;
    const client = this.#clients.get(task.target.source);
    if (!config || !client) return;
    const { target, profile } = task;
    const outcome = await scrapeProfile(target, profile, client, {
      timeout: config.scrape.timeout,
      maxProfileSize: config.scrape.max_profile_size,
      maxDecompressedSize: config.scrape.max_decompressed_size,
    }, signal);
    const result = outcome.ok ? 'success' : outcome.result;
    this.metrics.scrapes.inc({ provider: target.provider, type: profile.type, result });
    this.metrics.scrapeDuration.observe({ type: profile.type }, outcome.durationMs / 1000);
    this.metrics.scrapedBytes.inc({ type: profile.type }, outcome.bytes);
    this.#lastScrapes.set(task.key, {
      time: new Date().toISOString(),
      durationMs: outcome.durationMs,
      bytes: outcome.bytes,
      result,
      ...(outcome.ok ? {} : { error: outcome.reason }),
    });
    if (!outcome.ok) {
      this.#logger.warn({ target: target.address, service: target.service, type: profile.type, url: profile.url, result, reason: outcome.reason }, 'scrape failed');
      return;
    }
    await this.#delivery.submit(outcome.profile);
  }

  /** The dry-run JSON of what runs now, plus the last scrape of each target × type. */
  report(): TargetsReport & { targets: (TargetsReport['targets'][number] & { last?: Record<string, LastScrape> })[] } {
    const problems: DiscoveryProblem[] = this.#discovery?.problems() ?? [];
    const base = targetsReport(this.#current, problems);
    return {
      ...base,
      targets: base.targets.map((t) => {
        const last: Record<string, LastScrape> = {};
        for (const p of t.profiles) {
          const l = this.#lastScrapes.get(`${t.id}/${p.type}`);
          if (l) last[p.type] = l;
        }
        return { ...t, last };
      }),
    };
  }

  #routes(): Map<string, Handler> {
    const routes = pprofRoutes();
    routes.set('/healthz', (_req, res) => sendText(res, 200, 'ok\n'));
    routes.set('/-/ready', (_req, res) => (this.ready ? sendText(res, 200, 'ready\n') : sendText(res, 503, 'not ready: discovery has not answered yet\n')));
    routes.set('/metrics', async (_req, res) => sendText(res, 200, await this.metrics.registry.metrics(), this.metrics.registry.contentType));
    routes.set('/targets', (_req, res) => sendJson(res, 200, this.report()));
    for (const [k, h] of this.#extraRoutes) routes.set(k, h);
    return routes;
  }

  /** Stops discovery and new scrapes, lets in-flight scrapes finish, hands every profile over, closes. Idempotent. */
  stop(options: { scrapeDeadlineMs?: number; sendDeadlineMs?: number } = {}): Promise<void> {
    this.#stopping ??= (async () => {
      clearTimeout(this.#rebuildTimer);
      await this.#discovery?.stop();
      await this.#scheduler?.drain(options.scrapeDeadlineMs ?? SHUTDOWN_SCRAPE_DEADLINE_MS);
      await this.#delivery.close(options.sendDeadlineMs ?? SHUTDOWN_SEND_DEADLINE_MS);
      await Promise.all([...this.#repositories.values()].map((s) => s.repository.close()));
      await Promise.all([...this.#clients.values()].map((c) => c.close().catch(() => undefined)));
      await this.#server?.close();
    })();
    return this.#stopping;
  }
}
