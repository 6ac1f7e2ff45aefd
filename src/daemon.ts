import type { Logger } from 'pino';
import type { Config, LoadedConfig } from './config/index.js';
import { identityOf } from './config/index.js';
import { DiscoveryManager } from './discovery/index.js';
import type { DiscoveryProblem, ProviderFactory } from './discovery/index.js';
import { createMetrics } from './metrics.js';
import type { Metrics } from './metrics.js';
import { createFanOut, createRepository, openSpool, queueSettingsOf, repositoryNameOf } from './repositories/index.js';
import type { Delivery, Outbox, QueueHandle, Repository, Spool } from './repositories/index.js';
import { clientSettingsFor, createTargetClient } from './scrape/clients.js';
import type { TargetClient } from './scrape/clients.js';
import { Scheduler } from './scrape/scheduler.js';
import type { Clock, RunTail, ScrapeTask, TakeSlot } from './scrape/scheduler.js';
import { scrapeProfile } from './scrape/scraper.js';
import { buildTargets, targetsReport } from './targets/index.js';
import type { BuildResult, DroppedTarget, Target } from './targets/index.js';
import { needsNewListener, rebindStatusServer, startStatusServer } from './server/server.js';
import type { Handler, StatusServer } from './server/server.js';
import { listenerOptionsOf } from './server/settings.js';
import type { ListenerOptions } from './server/settings.js';
import { LastingKeys } from './log-limiter.js';
import { LastProfiles } from './server/last-profiles.js';
import { lastProfileLink, statusRoutes } from './server/routes.js';
import type { LastScrapeJson, StatusReport, StatusSource } from './server/routes.js';
import type { ScrapedProfile } from './profiles/profile.js';
import { ScrapesInFlight } from './repositories/order.js';

/** The last scrape of one target × type, as /targets shows it. */
export type LastScrape = LastScrapeJson;

export interface DaemonOptions {
  readonly logger: Logger;
  readonly metrics?: Metrics;
  readonly providerFactory?: ProviderFactory;
  readonly clock?: Clock;
  /** Wraps a repository in its outbox; the default is its durable queue under `state_dir/queues/<name>`. */
  /** Memory for the last profile of each target × type, for the status page's downloads (default 32 MiB). */
  readonly lastProfilesBytes?: number;
  /** How long a reload waits for a restarted provider's first answer before judging its targets gone (default 10 s). */
  readonly handoverMs?: number;
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
  readonly targets: { added: number; removed: number; kept: number };
  /** Set when server.listen changed. */
  readonly listen?: { from: string; to: string };
  /** The other server: settings that changed (allowed_hosts, enable_reload, basic_auth, tls). */
  readonly server?: string[];
}

const LISTENER_KEYS = ['allowed_hosts', 'enable_reload', 'basic_auth', 'tls'] as const;

const SHUTDOWN_SCRAPE_DEADLINE_MS = 10_000;
const SHUTDOWN_SEND_DEADLINE_MS = 5_000;
const LAST_PROFILES_BYTES = 32 * 1024 ** 2;
const HANDOVER_MS = 10_000;
const REBIND_GRACE_MS = 5_000;

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
  #repositories = new Map<string, RepositorySlot>();
  #delivery: Delivery = createFanOut(new Map());
  /** The durable queues (state_dir/queues), opened at the first apply. */
  #spool: Spool | undefined;
  #server: StatusServer | undefined;
  #current: BuildResult = { targets: [], dropped: [] };
  #rebuildTimer: NodeJS.Timeout | undefined;
  readonly #dropsLogged = new LastingKeys();
  /** Targets a repository will not get, logged once each (as drops are). */
  readonly #notSentLogged = new LastingKeys();
  /** Targets whose profile time was replaced by the scrape time, logged once each. */
  readonly #skewedTargets = new Set<string>();
  /** Scrapes from request to queued profile: ordered queues (profefe) hold later profiles of a service for them. */
  readonly #scrapesInFlight = new ScrapesInFlight();
  readonly #lastScrapes = new Map<string, LastScrape>();
  readonly #lastProfiles: LastProfiles;
  /** An apply is between its discovery change and its rebuild: rebuilds wait for it. */
  #applying = false;
  /** Outboxes of repositories a reload removed or swapped, still delivering what they hold. */
  readonly #retiring = new Set<RepositorySlot>();
  readonly #extraRoutes = new Map<string, Handler>();
  #stopping: Promise<void> | undefined;

  constructor(options: DaemonOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.metrics = options.metrics ?? createMetrics();
    this.#lastProfiles = new LastProfiles(options.lastProfilesBytes ?? LAST_PROFILES_BYTES);
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
    if (first) await this.#openSpool(config);

    // reads the password hash and certificate files: a bad one fails here, before anything changed
    const listenerOptions = await listenerOptionsOf(config.server);
    let listen: { from: string; to: string } | undefined;
    let rebound: ListenerOptions | undefined;
    if (first) {
      this.#server = await startStatusServer(config.server.listen, this.#routes(), this.#logger, listenerOptions);
      this.#logger.info({ listen: this.#server.address, tls: listenerOptions.tls !== undefined, basic_auth: listenerOptions.basicAuth !== undefined, reload: listenerOptions.enableReload === true }, 'status listener up');
    } else if (config.server.listen !== previous.server.listen || (this.#server && needsNewListener(this.#server.options, listenerOptions))) {
      if (config.server.listen !== previous.server.listen) listen = { from: previous.server.listen, to: config.server.listen };
      rebound = this.#server?.options ?? {};
      await this.#rebind(config.server.listen, listenerOptions);
    }
    const clients = new Map<number, TargetClient & { close(): Promise<void> }>();
    let repositories: ApplyReport['repositories'];
    try {
      for (let source = 0; source < config.discovery.length; source++) {
        clients.set(source, await createTargetClient(clientSettingsFor(config, source)));
      }
      repositories = await this.#applyRepositories(config);
    } catch (err) {
      await Promise.all([...clients.values()].map((c) => c.close().catch(() => undefined)));
      if (rebound) await this.#rebind(previous?.server.listen ?? config.server.listen, rebound).catch(() => undefined);
      throw err;
    }
    if (!first && !rebound) this.#server?.configure(listenerOptions);
    const server = first ? [] : LISTENER_KEYS.filter((k) => identityOf(config.server[k]) !== identityOf(previous.server[k]));

    this.#config = config;
    this.#loaded = loaded;
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
    return { providers, repositories, targets, ...(listen ? { listen } : {}), ...(server.length > 0 ? { server } : {}) };
  }

  async #rebind(listen: string, options: ListenerOptions): Promise<void> {
    const old = this.#server;
    if (!old) return;
    const moved = await rebindStatusServer(old, listen, this.#routes(), this.#logger, REBIND_GRACE_MS, options);
    if ('server' in moved) {
      this.#server = moved.server;
      this.#logger.info({ listen: moved.server.address, was: old.address }, 'status listener moved');
      return;
    }
    this.#server = moved.restored;
    throw moved.error;
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
        const repository = await createRepository(entry, { logger: this.#logger, metrics: this.metrics, previous: existing?.repository, profileLimits: () => (this.#config ?? config).scrape });
        // a swapped repository binds to the same queue folder: nothing queued moves or is lost
        const outbox = await (await this.#openSpool(config)).attach(repository, queueSettingsOf(entry));
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
    const outboxes = new Map([...next].map(([n, s]) => [n, s.outbox]));
    this.#delivery = this.#spool ? this.#spool.activate(outboxes as Map<string, QueueHandle>) : createFanOut(outboxes);
    const removed = [...old.keys()].filter((n) => !next.has(n));
    // outboxes that were replaced or removed still deliver what they hold
    for (const [name, slot] of old) {
      if (next.get(name) === slot) continue;
      this.#retiring.add(slot);
      void slot.outbox
        .close(SHUTDOWN_SEND_DEADLINE_MS * 6)
        .then(() => slot.repository.close())
        .catch(() => undefined)
        .finally(() => this.#retiring.delete(slot));
    }
    return { added, removed, swapped, kept };
  }

  async #openSpool(config: Config): Promise<Spool> {
    if (this.#spool) {
      if (this.#spool.stateDir !== config.state_dir) this.#logger.warn({ state_dir: config.state_dir, in_use: this.#spool.stateDir }, 'state_dir changed: it takes effect at the next start');
      return this.#spool;
    }
    this.#spool = await openSpool(config.state_dir, { logger: this.#logger, metrics: this.metrics, scrapes: this.#scrapesInFlight });
    return this.#spool;
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
    const change = this.#scheduler.update(result.targets);
    const byProvider = new Map<string, number>();
    for (const t of result.targets) byProvider.set(t.provider, (byProvider.get(t.provider) ?? 0) + 1);
    this.metrics.targets.reset();
    for (const [provider, n] of byProvider) this.metrics.targets.set({ provider }, n);
    this.metrics.droppedTargets.reset();
    const droppedBy = new Map<string, number>();
    for (const d of result.dropped) droppedBy.set(d.provider, (droppedBy.get(d.provider) ?? 0) + 1);
    for (const [provider, n] of droppedBy) this.metrics.droppedTargets.set({ provider }, n);
    this.#logDrops(result.dropped);
    this.#logNotSent(result.targets);
    if (change.added + change.removed + change.changed > 0) {
      this.#logger.info({ targets: result.targets.length, dropped: result.dropped.length, loops_added: change.added, loops_removed: change.removed, loops_changed: change.changed }, 'targets updated');
    }
    const live = new Set(result.targets.flatMap((t) => t.profiles.map((p) => `${t.id}/${p.type}`)));
    for (const key of this.#lastScrapes.keys()) if (!live.has(key)) this.#lastScrapes.delete(key);
    const liveIds = new Set(result.targets.map((t) => t.id));
    for (const id of this.#skewedTargets) if (!liveIds.has(id)) this.#skewedTargets.delete(id);
    this.#lastProfiles.retain(live);
    return targets;
  }

  /**
   * Logs each target when it starts being dropped, with its reason, once
   * (not at every refresh). Another shard's targets are expected: debug only.
   */
  #logDrops(dropped: readonly DroppedTarget[]): void {
    for (const d of dropped) {
      if (!this.#dropsLogged.isNew(`${d.source}\0${d.address ?? ''}\0${d.reason}`)) continue;
      const fields = { provider: d.provider, source: `discovery[${d.source}]`, address: d.address, reason: d.reason };
      if (d.reason.startsWith('belongs to shard ')) this.#logger.debug(fields, 'target dropped');
      else this.#logger.warn(fields, 'target dropped');
    }
    this.#dropsLogged.endRound();
  }

  /** Logs, once while it lasts, each target whose profiles a repository will never get, with why and what to do. */
  #logNotSent(targets: readonly Target[]): void {
    for (const t of targets) {
      for (const n of t.notSentTo ?? []) {
        if (!this.#notSentLogged.isNew(`${t.id}\0${n.repository}\0${n.reason}`)) continue;
        this.#logger.warn({ provider: t.provider, source: `discovery[${t.source}]`, address: t.address, service: t.service, repository: n.repository, reason: n.reason }, 'target not sent to a repository: the others get its profiles');
      }
    }
    this.#notSentLogged.endRound();
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
    const outcome = await scrapeProfile(target, profile, client, {
      timeout: config.scrape.timeout,
      maxProfileSize: config.scrape.max_profile_size,
      maxDecompressedSize: config.scrape.max_decompressed_size,
      limits: config.scrape,
      slot,
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
    if (outcome.ok) this.#lastProfiles.set(task.key, outcome.profile);
    else this.#lastProfiles.delete(task.key);
    if (!outcome.ok) {
      this.#logger.warn({ target: target.address, service: target.service, type: profile.type, url: profile.url, result, reason: outcome.reason }, 'scrape failed');
      return undefined;
    }
    if (outcome.ignoredTimeMs !== undefined && !this.#skewedTargets.has(target.id)) {
      this.#skewedTargets.add(target.id);
      this.#logger.warn(
        { target: target.address, service: target.service, type: profile.type, profile_time: new Date(outcome.ignoredTimeMs).toISOString(), scrape_time: new Date(outcome.profile.time).toISOString() },
        "profile time is more than 10 minutes from the scrape: filed under the scrape time instead (logged once per target); check the target's clock",
      );
    }
    // the request is done: making the profile durable must not hold a concurrency slot
    return { settled: this.#delivery.submit(outcome.profile) };
  }

  /** The dry-run JSON of what runs now, plus the last scrape of each target × type. */
  report(): StatusReport {
    const problems: DiscoveryProblem[] = this.#discovery?.problems() ?? [];
    const base = targetsReport(this.#current, problems);
    return {
      ...base,
      targets: base.targets.map((t) => {
        const last: Record<string, LastScrape> = {};
        for (const p of t.profiles) {
          const key = `${t.id}/${p.type}`;
          const l = this.#lastScrapes.get(key);
          if (l) last[p.type] = this.#lastProfiles.has(key) ? { ...l, profile: lastProfileLink(t.id, p.type) } : l;
        }
        return { ...t, last };
      }),
    };
  }

  /** The last good profile of a target × type, while it is held (status page downloads). */
  lastProfile(targetId: string, type: string): ScrapedProfile | undefined {
    return this.#lastProfiles.get(`${targetId}/${type}`);
  }

  #routes(): Map<string, Handler> {
    const routes = statusRoutes(this);
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
      // opened but never activated when the start failed after it: its lock goes too
      await this.#spool?.close(options.sendDeadlineMs ?? SHUTDOWN_SEND_DEADLINE_MS);
      // a shorter deadline for outboxes a reload retired: close() again cuts theirs short
      await Promise.all([...this.#retiring].map((s) => s.outbox.close(options.sendDeadlineMs ?? SHUTDOWN_SEND_DEADLINE_MS).catch(() => undefined)));
      await Promise.all([...this.#repositories.values()].map((s) => s.repository.close()));
      await Promise.all([...this.#clients.values()].map((c) => c.close().catch(() => undefined)));
      await this.#server?.close();
    })();
    return this.#stopping;
  }
}

/** Resolves when `p` settles or after `ms`, whichever comes first. */
async function withDeadline(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => undefined), new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); timer.unref(); })]);
  clearTimeout(timer);
}
