import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config, LoadedConfig } from './config/index.js';
import { DiscoveryManager } from './discovery/index.js';
import type { ProviderFactory } from './discovery/index.js';
import { createMetrics } from './metrics.js';
import type { Metrics } from './metrics.js';
import { Repositories, ScrapesInFlight } from './delivery/index.js';
import { clientSettingsFor, createTargetClient, KEEP_ALIVE_MS } from './http/index.js';
import type { TargetClient } from './http/index.js';
import { Scheduler } from './scrape/scheduler.js';
import { realClock } from './clock.js';
import type { Clock } from './clock.js';
import type { RunTail, ScrapeTask, TakeSlot } from './scrape/scheduler.js';
import { scrapeProfile } from './scrape/scraper.js';
import { buildTargets, TargetStatus } from './targets/index.js';
import type { BuildResult } from './targets/index.js';
import type { ListenerReport, StatusListener } from './server/listener.js';
import { judgeHealth } from './server/health.js';
import type { Health } from './server/health.js';
import type { DaemonStatusJson, StatusReport, StatusSource } from './server/routes.js';
import { repositoryStatusJson, statusReport } from './server/status-report.js';
import type { HeldProfile } from './server/last-profiles.js';

export interface DaemonOptions {
  readonly logger: Logger;
  readonly metrics?: Metrics;
  readonly providerFactory?: ProviderFactory;
  readonly clock?: Clock;
  /** The status listener, applied with each config before the steps that can fail, closed last. */
  readonly listener?: StatusListener;
  /** Memory for the last profile of each target × type, for the status page's downloads (default 32 MiB). */
  readonly lastProfilesBytes?: number;
  /** How long a reload waits for a restarted provider's first answer before judging its targets gone (default 10 s). */
  readonly handoverMs?: number;
  /** The version the status page shows (default: package.json's). */
  readonly version?: string;
  /** Where the config came from, as the status page shows it (default: the loaded file's path, or `<embedded default>`). */
  readonly configSource?: string;
}

/** What one apply() changed, for the log. */
export interface ApplyReport extends ListenerReport {
  readonly providers: { started: number; stopped: number; kept: number };
  readonly repositories: { added: string[]; removed: string[]; swapped: string[]; kept: string[] };
  readonly targets: { added: number; removed: number; kept: number };
}

const SHUTDOWN_SCRAPE_DEADLINE_MS = 10_000;
const SHUTDOWN_SEND_DEADLINE_MS = 5_000;
/** The status page's last profiles: the last 6,500 or so at 1.2 KiB each, or 250 at 32 KiB. */
const LAST_PROFILES_BYTES = 8 * 1024 ** 2;
const HANDOVER_MS = 10_000;

/**
 * Wires the stages: discovery → target builder → scheduler → scraper →
 * delivery → repositories. apply(config) is both the start and a reload.
 */
export class Daemon implements StatusSource {
  readonly metrics: Metrics;
  readonly #logger: Logger;
  readonly #options: DaemonOptions;
  #config: Config | undefined;
  #loaded: LoadedConfig | undefined;
  #scheduler: Scheduler | undefined;
  #discovery: DiscoveryManager | undefined;
  #clients = new Map<number, TargetClient & { close(): Promise<void> }>();
  /** The repositories and their durable queues (state_dir/queues), opened at the first apply. */
  readonly #repositories: Repositories;
  #current: BuildResult = { targets: [], dropped: [] };
  #rebuildTimer: NodeJS.Timeout | undefined;
  readonly #status: TargetStatus;
  /** Scrapes from request to queued profile: ordered queues (profefe) hold later profiles of a service for them. */
  readonly #scrapesInFlight = new ScrapesInFlight();
  /** An apply is between its discovery change and its rebuild: rebuilds wait for it. */
  #applying = false;
  #stopping: Promise<void> | undefined;
  readonly #startedAt = Date.now();
  /** The targets were built from every provider's first answer (or failure): /-/ready from then on. */
  #firstRoundBuilt = false;
  #appliedAt: number | undefined;

  constructor(options: DaemonOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.metrics = options.metrics ?? createMetrics();
    this.#repositories = new Repositories({ logger: this.#logger, metrics: this.metrics, scrapes: this.#scrapesInFlight });
    this.#status = new TargetStatus({ logger: this.#logger, metrics: this.metrics, lastProfilesBytes: options.lastProfilesBytes ?? LAST_PROFILES_BYTES });
  }

  get config(): Config | undefined {
    return this.#config;
  }

  get loaded(): LoadedConfig | undefined {
    return this.#loaded;
  }

  /** The status listener's real address, once started. */
  get serverAddress(): string | undefined {
    return this.#options.listener?.address;
  }

  /** Config loaded, every provider tried its first refresh, and the targets were built from those answers. */
  get ready(): boolean {
    return this.#config !== undefined && this.#firstRoundBuilt;
  }

  /**
   * Starts the daemon on a config, or moves a running one to a new config as
   * a difference: unchanged providers keep running, targets that stay keep
   * their loops, changed repositories are swapped. The steps that can fail
   * (the listener, clients, repositories) come first and are undone on
   * failure, so a failed apply leaves the old config running. Callers
   * serialise applies (see Reloader).
   */
  async apply(loaded: LoadedConfig): Promise<ApplyReport> {
    if (this.#stopping) throw new Error('the daemon is stopping; the config was not applied');
    const config = loaded.config;
    const previous = this.#config;
    const first = previous === undefined;
    // the state_dir lock before the listener: a second daemon on the same config names the one running, not the port it holds
    if (first) await this.#repositories.open(config);

    const listener = await this.#options.listener?.apply(config.server);
    const clients = new Map<number, TargetClient & { close(): Promise<void> }>();
    let repositories: ApplyReport['repositories'];
    try {
      for (let source = 0; source < config.discovery.length; source++) {
        clients.set(source, await createTargetClient(clientSettingsFor(config, source)));
      }
      repositories = await this.#repositories.apply(config);
    } catch (err) {
      await Promise.all([...clients.values()].map((c) => c.close().catch(() => undefined)));
      await listener?.undo();
      throw err;
    }
    listener?.commit();

    this.#config = config;
    this.#loaded = loaded;
    this.#appliedAt = Date.now();
    this.#status.setTargetUpLimit(config.server.target_up_limit);
    if (!this.#scheduler) {
      this.#scheduler = new Scheduler(
        { concurrency: config.scrape.concurrency, ...(this.#options.clock ? { clock: this.#options.clock } : {}) },
        {
          run: (task, planned, signal, slot) => this.#scrape(task, planned, signal, slot),
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
    this.#applying = true;
    let providers: ApplyReport['providers'];
    try {
      providers = await this.#discovery.apply(config.discovery);
      // A restarted provider (its block changed; one that only moved in the
      // list keeps running) gets a moment to answer, so the targets it finds
      // again keep their loops and in-flight scrapes instead of being dropped
      // and re-added.
      if (!first && providers.started > 0) await withDeadline(this.#discovery.firstRefresh(), this.#options.handoverMs ?? HANDOVER_MS);
    } finally {
      this.#applying = false;
    }
    // targets are built with the new config's discovery indexes: the clients by index switch with them
    const oldClients = this.#clients;
    this.#clients = clients;
    const targets = this.#rebuild();
    // agents of the old config finish what they carry, then close
    for (const c of oldClients.values()) void c.close().catch(() => undefined);
    return { providers, repositories, targets, ...listener?.report };
  }

  #scheduleRebuild(): void {
    if (this.#rebuildTimer) return;
    this.#rebuildTimer = setTimeout(() => {
      this.#rebuildTimer = undefined;
      this.#rebuild();
    }, 20);
    this.#rebuildTimer.unref();
  }

  #rebuild(): ApplyReport['targets'] {
    const config = this.#config;
    const none = { added: 0, removed: 0, kept: this.#current.targets.length };
    if (!config || !this.#discovery || !this.#scheduler || this.#stopping || this.#applying) return none;
    const result = buildTargets(config, this.#discovery.groups());
    const before = new Set(this.#current.targets.map((t) => t.id));
    const kept = result.targets.filter((t) => before.has(t.id)).length;
    const targets = { added: result.targets.length - kept, removed: before.size - kept, kept };
    this.#current = result;
    if (this.#discovery.ready && !this.#firstRoundBuilt) {
      this.#firstRoundBuilt = true;
      this.#logger.info({ targets: result.targets.length, dropped: result.dropped.length }, 'first discovery round done: every provider has answered or failed');
    }
    const change = this.#scheduler.update(result.targets);
    this.#status.built(result);
    if (change.added + change.removed + change.changed > 0) {
      this.#logger.info({ targets: result.targets.length, dropped: result.dropped.length, loops_added: change.added, loops_removed: change.removed, loops_changed: change.changed }, 'targets updated');
    }
    return targets;
  }

  async #scrape(task: ScrapeTask, _planned: number, signal: AbortSignal, slot?: TakeSlot): Promise<RunTail | void> {
    const config = this.#config;
    const client = this.#clients.get(task.target.source);
    if (!config || !client) return;
    const end = this.#scrapesInFlight.begin(task.target.service);
    let tail: RunTail | undefined;
    try {
      tail = await this.#scrapeAndSubmit(task, config, client, signal, slot);
      return tail ? { settled: tail.settled.finally(end) } : undefined;
    } finally {
      if (!tail) end();
    }
  }

  /** One scrape; the hand-over of its profile to the outboxes, when one was taken. */
  async #scrapeAndSubmit(task: ScrapeTask, config: Config, client: TargetClient, signal: AbortSignal, slot: TakeSlot | undefined): Promise<RunTail | undefined> {
    const { target, profile } = task;
    const nextAt = this.#scheduler?.nextTickOfTarget(target) ?? Infinity;
    const outcome = await scrapeProfile(target, profile, client, {
      timeout: config.scrape.timeout,
      maxProfileSize: config.scrape.max_profile_size,
      maxDecompressedSize: config.scrape.max_decompressed_size,
      limits: config.scrape,
      slot,
      keepConnection: nextAt - (this.#options.clock ?? realClock).now() <= KEEP_ALIVE_MS,
    }, signal);
    this.#status.scraped(task, outcome);
    if (!outcome.ok) return undefined;
    // the request is done: making the profile durable must not hold a concurrency slot
    return { settled: this.#repositories.submit(outcome.profile) };
  }

  /** The dry-run JSON of what runs now, plus the last scrape of each target × type. */
  report(): StatusReport {
    return statusReport(this.#current, this.#discovery?.problems() ?? [], this.#status);
  }

  /** /-/healthy: a stalled repository, or discovery failing everywhere, for longer than server.health allows. */
  health(): Health {
    const health = this.#config?.server.health;
    if (!health) return { healthy: true, reasons: [] };
    return judgeHealth({
      thresholds: { deliveryStallMs: health.delivery_stall, discoveryFailureMs: health.discovery_failure },
      repositories: this.#repositories.status(),
      discoveryFailingSince: this.#discovery?.allFailingSince(),
      discoveryErrors: this.#discovery?.problems() ?? [],
      now: Date.now(),
    });
  }

  /** /status: version, config source, health and each repository's delivery. */
  status(): DaemonStatusJson {
    const now = Date.now();
    const stallMs = this.#config?.server.health.delivery_stall ?? Infinity;
    return {
      version: this.#options.version ?? PACKAGE_VERSION,
      node: process.version,
      config: { source: this.#options.configSource ?? this.#loaded?.source ?? '', ...(this.#appliedAt !== undefined ? { applied: new Date(this.#appliedAt).toISOString() } : {}) },
      started: new Date(this.#startedAt).toISOString(),
      ready: this.ready,
      health: this.health(),
      repositories: this.#repositories.status().map((r) => repositoryStatusJson(r, stallMs, now)),
    };
  }

  /** The last good profile of a target × type, while it is held (status page downloads). */
  lastProfile(targetId: string, type: string): HeldProfile | undefined {
    return this.#status.lastProfile(targetId, type);
  }

  /** Stops discovery and new scrapes, lets in-flight scrapes finish, hands every profile over, closes. Idempotent. */
  stop(options: { scrapeDeadlineMs?: number; sendDeadlineMs?: number } = {}): Promise<void> {
    this.#stopping ??= (async () => {
      clearTimeout(this.#rebuildTimer);
      await this.#discovery?.stop();
      await this.#scheduler?.drain(options.scrapeDeadlineMs ?? SHUTDOWN_SCRAPE_DEADLINE_MS);
      await this.#repositories.close(options.sendDeadlineMs ?? SHUTDOWN_SEND_DEADLINE_MS);
      await Promise.all([...this.#clients.values()].map((c) => c.close().catch(() => undefined)));
      await this.#options.listener?.close();
    })();
    return this.#stopping;
  }
}

/** package.json's version, read once (src/ and dist/ both sit one folder below it). */
const PACKAGE_VERSION = ((): string => {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
})();

/** Resolves when `p` settles or after `ms`, whichever comes first. */
async function withDeadline(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => undefined), new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); timer.unref(); })]);
  clearTimeout(timer);
}
