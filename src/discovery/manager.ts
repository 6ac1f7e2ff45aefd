import type { Logger } from 'pino';
import type { DiscoveryEntry } from '../config/index.js';
import { identityOf } from '../config/index.js';
import type { Metrics } from '../metrics.js';
import type { TargetGroup } from '../targets/index.js';
import type { ProviderFactory } from './provider.js';
import { createProvider } from './factory.js';
import { providerOf } from './registry.js';
import { ProviderRunner, relocated } from './runner.js';

/** A provider that could not be started or whose refresh fails now. */
export interface DiscoveryProblem {
  readonly provider: string;
  readonly source: number;
  readonly error: string;
}

export interface ApplySummary {
  readonly started: number;
  readonly stopped: number;
  readonly kept: number;
}

interface Slot {
  /** The entry's settings, as canonical JSON: what a runner is kept by. */
  readonly key: string;
  /** Its entry's index now. */
  readonly source: number;
  readonly kind: string;
  readonly runner: ProviderRunner | undefined;
  /** Set when the provider could not be created; it names the index the entry had then. */
  readonly startError: string | undefined;
  /** The index its entry had when the provider was created: its messages name that one. */
  readonly createdIndex: number;
  /** When creating the provider failed (ms since the epoch). */
  readonly startFailedAt: number | undefined;
}

/**
 * Keeps one runner per discovery entry. apply() starts, stops or keeps them
 * by their settings, not their place in the list, so a reload leaves
 * unchanged providers running with their targets, also when entries moved:
 * a kept runner just takes its entry's new index, which its targets carry
 * (the target builder and the scrape clients go by it).
 */
export class DiscoveryManager {
  #slots: Slot[] = [];
  readonly #deps: { logger: Logger; metrics: Metrics; onChange: () => void; factory: ProviderFactory };

  constructor(deps: { logger: Logger; metrics: Metrics; onChange: () => void; factory?: ProviderFactory }) {
    this.#deps = { ...deps, factory: deps.factory ?? createProvider };
  }

  async apply(entries: readonly DiscoveryEntry[]): Promise<ApplySummary> {
    // the same settings twice are two runners: each copy is kept by its settings and which copy it is
    const old = new Map<string, Slot>();
    for (const s of this.#slots) old.set(s.key, s);
    const copies = new Map<string, number>();
    const next: Slot[] = [];
    let started = 0;
    let kept = 0;
    for (let source = 0; source < entries.length; source++) {
      const entry = entries[source] as DiscoveryEntry;
      const identity = identityOf(entry);
      const copy = copies.get(identity) ?? 0;
      copies.set(identity, copy + 1);
      const key = `${copy}:${identity}`;
      const existing = old.get(key);
      if (existing) {
        old.delete(key);
        existing.runner?.moveTo(source);
        next.push({ ...existing, source });
        kept++;
        continue;
      }
      const kind = providerOf(entry)?.kind ?? 'unknown';
      try {
        const provider = await this.#deps.factory(entry, source, { logger: this.#deps.logger });
        next.push({ key, source, kind, runner: new ProviderRunner(provider, this.#deps), startError: undefined, createdIndex: source, startFailedAt: undefined });
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        this.#deps.logger.error({ provider: kind, source: `discovery[${source}]`, error: message }, 'discovery provider could not start');
        next.push({ key, source, kind, runner: undefined, startError: message, createdIndex: source, startFailedAt: Date.now() });
      }
      started++;
    }
    this.#slots = next;
    await Promise.all([...old.values()].map((s) => s.runner?.stop() ?? Promise.resolve()));
    this.#deps.onChange();
    return { started, stopped: old.size, kept };
  }

  /** What every provider knows now: its last good answer. */
  groups(): TargetGroup[] {
    const groups: TargetGroup[] = [];
    for (const slot of this.#slots) {
      const provider = slot.runner?.provider;
      const found = slot.runner?.state.found;
      if (!provider || !found) continue;
      groups.push({ source: slot.source, provider: provider.kind, directiveNoun: provider.directiveNoun, targets: found });
    }
    return groups;
  }

  problems(): DiscoveryProblem[] {
    const out: DiscoveryProblem[] = [];
    for (const slot of this.#slots) {
      const error = slot.startError !== undefined ? relocated(slot.startError, slot.createdIndex, slot.source) : slot.runner?.state.error;
      if (error !== undefined) out.push({ provider: slot.kind, source: slot.source, error });
    }
    return out;
  }

  /**
   * Since when every provider has been failing (ms since the epoch: the
   * latest start of their failure streaks), or undefined when one answers
   * or there is none.
   */
  allFailingSince(): number | undefined {
    if (this.#slots.length === 0) return undefined;
    let since = 0;
    for (const slot of this.#slots) {
      const at = slot.startFailedAt ?? slot.runner?.state.failingSince;
      if (at === undefined) return undefined;
      since = Math.max(since, at);
    }
    return since;
  }

  /** Every provider has tried its first refresh. */
  get ready(): boolean {
    return this.#slots.every((s) => s.runner === undefined || s.runner.state.tried);
  }

  /** Resolves when every provider has tried its first refresh. */
  async firstRefresh(): Promise<void> {
    await Promise.all(this.#slots.map((s) => s.runner?.firstTry() ?? Promise.resolve()));
  }

  async stop(): Promise<void> {
    const slots = this.#slots;
    this.#slots = [];
    await Promise.all(slots.map((s) => s.runner?.stop() ?? Promise.resolve()));
  }
}
