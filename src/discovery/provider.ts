import type { Logger } from 'pino';
import type { DiscoveryEntry, ProviderKind } from '../config/index.js';
import type { Discovered } from '../targets/index.js';

/**
 * A source of targets: one per discovery entry. It turns an API answer into
 * metadata and nothing more; the target builder decides what it means.
 */
export interface Provider {
  readonly kind: ProviderKind;
  /** Index of its entry in config.discovery when it was created; a reload that only moves the entry keeps the provider, and its runner follows the new index. */
  readonly source: number;
  /** How reasons name its pprof.* metadata: "tag" or "label". */
  readonly directiveNoun?: string;
  /** Time between full refreshes; undefined when the answer never changes (static). */
  readonly refreshInterval?: number | undefined;
  /**
   * One complete answer. Throws a DiscoveryError on failure; a refresh that
   * fails halfway returns nothing, never part of the answer.
   */
  refresh(signal: AbortSignal): Promise<Discovered[]>;
  /**
   * Optional push: calls `changed` when the answer may have changed (Docker
   * events), so the manager refreshes sooner than the interval. Resolves when
   * `signal` aborts; rejects when the stream breaks (the manager reconnects
   * with backoff).
   */
  watch?(signal: AbortSignal, changed: () => void): Promise<void>;
  /** Releases its clients. */
  close?(): Promise<void>;
}

export interface ProviderDeps {
  readonly logger: Logger;
}

export type ProviderFactory = (entry: DiscoveryEntry, source: number, deps: ProviderDeps) => Promise<Provider>;

/** A failed refresh: what, where, and what to do, plus the API's error code for logs and metrics. */
export class DiscoveryError extends Error {
  override readonly name = 'DiscoveryError';
  readonly code: string | undefined;
  /** The API asked us to slow down: back off longer than for other errors. */
  readonly throttled: boolean;
  /**
   * The answer to publish all the same, for a provider of several sources
   * that each keep their own last good part (the file provider: one bad file
   * keeps its last good targets, the other files' changes still apply). The
   * failure is still reported and counted.
   */
  readonly answer: Discovered[] | undefined;

  constructor(message: string, options: { code?: string | undefined; throttled?: boolean; cause?: unknown; answer?: Discovered[] | undefined } = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.code = options.code;
    this.throttled = options.throttled ?? false;
    this.answer = options.answer;
  }
}
