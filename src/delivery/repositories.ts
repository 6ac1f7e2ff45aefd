import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { identityOf } from '../config/index.js';
import type { Metrics } from '../metrics.js';
import type { ScrapedProfile } from '../profiles/profile.js';
import { createRepository, repositoryNameOf } from '../repositories/factory.js';
import type { Repository } from '../repositories/repository.js';
import { BaselineFiles, baselinesDir } from './baselines.js';
import type { DeliveryStatus } from './delivery-status.js';
import type { QueueHandle } from './handle.js';
import type { ScrapesInFlight } from './order.js';
import { queueSettingsOf } from './settings.js';
import { openSpool } from './spool.js';
import type { Spool } from './spool.js';

/** What one apply() changed, by repository name. */
export interface RepositoriesReport {
  readonly added: string[];
  readonly removed: string[];
  readonly swapped: string[];
  readonly kept: string[];
}

export interface RepositoriesDeps {
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** The scrapes running now, for the ordered queues (profefe). */
  readonly scrapes: ScrapesInFlight;
}

interface Slot {
  /** The entry's settings: another identity swaps the repository. */
  readonly identity: string;
  readonly handle: QueueHandle;
  readonly repository: Repository;
}

/** How long a repository a reload removed or swapped gets to deliver what it holds. */
const RETIRE_DEADLINE_MS = 30_000;

/**
 * The set of repositories across reloads, each bound to its durable queue in
 * the spool. apply() keeps the repositories whose settings did not change,
 * swaps the changed ones onto the same queue folder (nothing queued moves),
 * and lets removed ones deliver what they hold before they close.
 */
export class Repositories {
  readonly #deps: RepositoriesDeps;
  #slots = new Map<string, Slot>();
  /** Repositories a reload removed or swapped, still delivering what they hold. */
  readonly #retiring = new Set<Slot>();
  /** The durable queues (state_dir/queues), opened at the first apply. */
  #spool: Spool | undefined;
  /** Set at the first activation: profiles go to the queues from then on. */
  #active: Spool | undefined;
  /** The config in force, whose limits the repositories decode profiles under. */
  #config: Config | undefined;

  constructor(deps: RepositoriesDeps) {
    this.#deps = deps;
  }

  /** Opens the spool (and takes the state_dir lock) once; a later state_dir takes effect at the next start. */
  async open(config: Config): Promise<Spool> {
    if (this.#spool) {
      if (this.#spool.stateDir !== config.state_dir) this.#deps.logger.warn({ state_dir: config.state_dir, in_use: this.#spool.stateDir }, 'state_dir changed: it takes effect at the next start');
      return this.#spool;
    }
    this.#spool = await openSpool(config.state_dir, { logger: this.#deps.logger, metrics: this.#deps.metrics, scrapes: this.#deps.scrapes });
    return this.#spool;
  }

  /**
   * Moves to the repositories of `config`. Creating one can fail: then those
   * created are closed and the previous set stays, untouched.
   */
  async apply(config: Config): Promise<RepositoriesReport> {
    const next = new Map<string, Slot>();
    const report: RepositoriesReport = { added: [], removed: [], swapped: [], kept: [] };
    const created: Slot[] = [];
    try {
      for (const entry of config.repositories) {
        const name = repositoryNameOf(entry);
        const identity = identityOf(entry);
        const existing = this.#slots.get(name);
        if (existing && existing.identity === identity) {
          next.set(name, existing);
          report.kept.push(name);
          continue;
        }
        // the state_dir the spool uses (or will): a later one takes effect at the next start
        const baselines = baselinesDir(this.#spool?.stateDir ?? config.state_dir, name);
        const repository = await createRepository(entry, {
          logger: this.#deps.logger,
          metrics: this.#deps.metrics,
          previous: existing?.repository,
          profileLimits: () => (this.#config ?? config).scrape,
          deltaBaselines: (options) => new BaselineFiles(baselines, { ...options, repository: name, logger: this.#deps.logger }),
        });
        // a swapped repository binds to the same queue folder: nothing queued moves or is lost
        const handle = await (await this.open(config)).attach(repository, queueSettingsOf(entry));
        const slot = { identity, handle, repository };
        created.push(slot);
        next.set(name, slot);
        (existing ? report.swapped : report.added).push(name);
      }
    } catch (err) {
      await Promise.all(created.map(async (s) => { await s.handle.close(0); await s.repository.close(); }));
      throw err;
    }
    const old = this.#slots;
    this.#activate(next);
    this.#config = config;
    report.removed.push(...this.#retire(old, next));
    return report;
  }

  #activate(next: Map<string, Slot>): void {
    this.#slots = next;
    if (!this.#spool) return;
    this.#spool.activate(new Map([...next].map(([n, s]) => [n, s.handle])));
    this.#active = this.#spool;
  }

  /** Lets the repositories of `old` that `next` removed or swapped deliver what they hold, then close; returns the names that left. */
  #retire(old: ReadonlyMap<string, Slot>, next: ReadonlyMap<string, Slot>): string[] {
    for (const [name, slot] of old) {
      if (next.get(name) === slot) continue;
      this.#retiring.add(slot);
      void slot.handle
        .close(RETIRE_DEADLINE_MS)
        .then(() => slot.repository.close())
        .catch(() => undefined)
        .finally(() => this.#retiring.delete(slot));
    }
    return [...old.keys()].filter((n) => !next.has(n));
  }

  /** The delivery of each configured repository, in config order: a read-only snapshot. */
  status(): DeliveryStatus[] {
    return [...this.#slots.values()].map((s) => s.handle.status());
  }

  /** Hands a profile to every repository's queue; resolves once it is durable, never waits for a repository. */
  submit(profile: ScrapedProfile): Promise<void> {
    return this.#active?.submit(profile) ?? Promise.resolve();
  }

  /**
   * Stops every queue (sends in flight get `deadlineMs`, retired ones too),
   * notes what is finished, releases the state_dir, closes the repositories.
   */
  async close(deadlineMs: number): Promise<void> {
    // opened but never activated when the start failed after it: its lock goes too
    await this.#spool?.close(deadlineMs);
    // a shorter deadline for repositories a reload retired: close() again cuts theirs short
    await Promise.all([...this.#retiring].map((s) => s.handle.close(deadlineMs).catch(() => undefined)));
    await Promise.all([...this.#slots.values()].map((s) => s.repository.close()));
  }
}
