import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { setLongTimeout } from '../long-timeout.js';
import type { Metrics } from '../metrics.js';
import type { Discovered } from '../targets/index.js';
import { DiscoveryError } from './provider.js';
import type { Provider } from './provider.js';

const WATCH_DEBOUNCE_MS = 100;
const MAX_THROTTLE_BACKOFF_MS = 10 * 60_000;

type RefreshOutcome = { ok: true } | { ok: false; error: unknown };

export interface RunnerState {
  /** The last good answer; undefined until the first refresh succeeds. */
  readonly found: readonly Discovered[] | undefined;
  /** The current failure, while a failure streak lasts. */
  readonly error: string | undefined;
  /** The first refresh has been tried (it may have failed). */
  readonly tried: boolean;
  /** When the current failure streak began (ms since the epoch), while one lasts. */
  readonly failingSince: number | undefined;
}

/**
 * Runs one provider: an immediate first refresh, then one every
 * refreshInterval (sooner when its watch says something changed). A failed
 * refresh keeps the last good answer, is logged once per failure streak and
 * counted, and is retried with backoff, longer when the API throttles.
 */
export class ProviderRunner {
  readonly provider: Provider;
  /** Its entry's index now: the provider's own until a reload moves the entry. */
  #source: number;
  #found: readonly Discovered[] | undefined;
  #foundText = '';
  #error: string | undefined;
  #failingSince: number | undefined;
  #tried = false;
  #wake: (() => void) | undefined;
  #wakeTimer: NodeJS.Timeout | undefined;
  /** The watch saw a change that no refresh has started after yet. */
  #dirty = false;
  /** While a round's refresh runs alone: starts the one that overtakes it. */
  #overtake: (() => void) | undefined;
  /** Refreshes started, and the latest-started one whose answer is published. */
  #started = 0;
  #published = 0;
  #inFlight = 0;
  readonly #controller = new AbortController();
  readonly #done: Promise<void>;
  readonly #firstTry: Promise<void>;
  #resolveFirst: () => void = () => undefined;

  constructor(
    provider: Provider,
    private readonly deps: { logger: Logger; metrics: Metrics; onChange: () => void },
  ) {
    this.provider = provider;
    this.#source = provider.source;
    this.#firstTry = new Promise((resolve) => {
      this.#resolveFirst = resolve;
    });
    this.#done = Promise.all([this.#refreshLoop(), this.#watchLoop()]).then(() => undefined);
  }

  get state(): RunnerState {
    const error = this.#error === undefined ? undefined : relocated(this.#error, this.provider.source, this.#source);
    return { found: this.#found, error, tried: this.#tried, failingSince: this.#failingSince };
  }

  /** Its entry moved in the list (a reload): logs, metrics and errors name the new index from now on. */
  moveTo(source: number): void {
    this.#source = source;
  }

  /** Resolves after the first refresh was tried. */
  firstTry(): Promise<void> {
    return this.#firstTry;
  }

  async stop(): Promise<void> {
    this.#controller.abort();
    this.#wake?.();
    clearTimeout(this.#wakeTimer);
    await this.#done;
    await this.provider.close?.();
  }

  #labels(): { provider: string; source: string } {
    return { provider: this.provider.kind, source: String(this.#source) };
  }

  #log(): Logger {
    return this.deps.logger.child({ provider: this.provider.kind, source: `discovery[${this.#source}]` });
  }

  async #refreshLoop(): Promise<void> {
    const signal = this.#controller.signal;
    let failures = 0;
    while (!signal.aborted) {
      let wait = this.provider.refreshInterval;
      this.#dirty = false;
      const outcome = await this.#round(signal);
      if (signal.aborted) break;
      if (outcome.ok) {
        if (failures > 0) this.#log().info({ failures }, 'discovery recovered');
        failures = 0;
        this.#error = undefined;
        this.#failingSince = undefined;
      } else {
        const err = outcome.error;
        failures++;
        const message = err instanceof Error ? err.message : String(err);
        this.#error = message;
        this.#failingSince ??= Date.now();
        const throttled = err instanceof DiscoveryError && err.throttled;
        const base = this.provider.refreshInterval ?? 30_000;
        wait = throttled ? Math.min(base * 2 ** (failures - 1), Math.max(base, MAX_THROTTLE_BACKOFF_MS)) : Math.min(base, 1000 * 2 ** (failures - 1));
        if (failures === 1) {
          this.#log().error({ error: relocated(message, this.provider.source, this.#source), code: err instanceof DiscoveryError ? err.code : undefined, kept_targets: this.#found?.length ?? 0 }, 'discovery failed; the last good targets stay');
        }
        // A failed first refresh is still an answer (an empty one) for readiness.
        if (!this.#tried) this.deps.onChange();
      }
      if (!this.#tried) {
        this.#tried = true;
        this.#resolveFirst();
      }
      await this.#sleep(wait);
    }
    this.#tried = true;
    this.#resolveFirst();
  }

  /**
   * One refresh, overtaken by a second one when the watch reports a change
   * while the first still waits for its answer (an answer that may predate the
   * change): the change shows after one list, not after the first and then a
   * second. Each answer is published when it comes, unless one started later
   * was already. The round ends with its latest refresh, whose outcome it
   * takes; an overtaken refresh finishes on its own (the signal stops it).
   */
  async #round(signal: AbortSignal): Promise<RefreshOutcome> {
    let latest = this.#attempt(signal);
    let overtaken = (): void => undefined;
    const overtaking = new Promise<void>((resolve) => {
      overtaken = resolve;
    });
    // a refresh still out from an earlier round counts: never more than two lists at once
    if (this.#inFlight < 2) {
      this.#overtake = () => {
        this.#overtake = undefined;
        this.#dirty = false;
        latest = this.#attempt(signal);
        overtaken();
      };
    }
    await Promise.race([latest, overtaking]);
    this.#overtake = undefined;
    return latest;
  }

  /** One refresh: counted, and its answer published unless a later-started one's already was. */
  async #attempt(signal: AbortSignal): Promise<RefreshOutcome> {
    const seq = ++this.#started;
    this.#inFlight++;
    try {
      const found = await this.provider.refresh(signal);
      if (signal.aborted) return { ok: true };
      this.deps.metrics.discoveryRefreshes.inc({ ...this.#labels(), result: 'success' });
      this.#publish(seq, found);
      return { ok: true };
    } catch (error) {
      if (!signal.aborted) {
        this.deps.metrics.discoveryRefreshes.inc({ ...this.#labels(), result: 'failure' });
        this.deps.metrics.discoveryFailures.inc(this.#labels());
        // a failure that still carries an answer (one bad file among several) publishes it
        if (error instanceof DiscoveryError && error.answer !== undefined) this.#publish(seq, error.answer);
      }
      return { ok: false, error };
    } finally {
      this.#inFlight--;
    }
  }

  /** Publishes an answer unless a later-started refresh's already was. */
  #publish(seq: number, found: readonly Discovered[]): void {
    if (seq <= this.#published) return;
    this.#published = seq;
    const text = JSON.stringify(found);
    if (this.#found === undefined || text !== this.#foundText) {
      this.#found = found;
      this.#foundText = text;
      this.deps.onChange();
    }
  }

  /** Waits `ms` (forever when undefined) or until the watch or stop() wakes it. */
  async #sleep(ms: number | undefined): Promise<void> {
    // a change seen while the refresh ran may have come too late for its answer
    if (this.#dirty) return;
    await new Promise<void>((resolve) => {
      const timer = ms === undefined ? undefined : setLongTimeout(resolve, ms);
      this.#wake = () => {
        timer?.clear();
        this.#wake = undefined;
        resolve();
      };
    });
  }

  async #watchLoop(): Promise<void> {
    const watch = this.provider.watch?.bind(this.provider);
    if (!watch) return;
    const signal = this.#controller.signal;
    const changed = (): void => {
      if (this.#wakeTimer) return;
      this.#wakeTimer = setTimeout(() => {
        this.#wakeTimer = undefined;
        this.#dirty = true;
        if (this.#overtake) this.#overtake();
        else this.#wake?.();
      }, WATCH_DEBOUNCE_MS);
      this.#wakeTimer.unref();
    };
    let failures = 0;
    while (!signal.aborted) {
      const started = Date.now();
      try {
        await watch(signal, changed);
        if (signal.aborted) return;
        throw new Error('the event stream ended');
      } catch (err) {
        if (signal.aborted) return;
        // a stream that stayed up a while starts a new failure streak
        if (Date.now() - started > 10_000) failures = 0;
        failures++;
        this.deps.metrics.discoveryFailures.inc(this.#labels());
        if (failures === 1) this.#log().warn({ error: relocated(err instanceof Error ? err.message : String(err), this.provider.source, this.#source) }, 'discovery watch stream broke; reconnecting with backoff');
      }
      // events may have been missed while the stream was down
      changed();
      try {
        await sleep(Math.min(30_000, 500 * 2 ** Math.min(failures, 6)), undefined, { signal, ref: false });
      } catch {
        return;
      }
    }
  }
}

/** A provider's messages name the index its entry had when it was created; after a reorder, they name where the entry is now. */
export function relocated(message: string, from: number, to: number): string {
  return from === to ? message : message.replaceAll(`discovery[${from}]`, `discovery[${to}]`);
}
