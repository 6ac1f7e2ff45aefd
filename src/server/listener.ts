import type { Logger } from 'pino';
import { identityOf } from '../config/index.js';
import type { ServerConfig } from '../config/schema.js';
import { needsNewListener, rebindStatusServer, startStatusServer } from './server.js';
import type { Handler, Routes, StatusServer } from './server.js';
import { listenerOptionsOf } from './settings.js';
import type { ListenerOptions } from './settings.js';

/** What one apply changed of the listener, for the reload's log. */
export interface ListenerReport {
  /** Set when server.listen changed. */
  readonly listen?: { from: string; to: string };
  /** The other server: settings that changed (allowed_hosts, enable_reload, basic_auth, tls). */
  readonly server?: string[];
}

/** A listener change made early in an apply, settled once the rest of the apply is known. */
export interface ListenerChange {
  readonly report: ListenerReport;
  /** The apply went through: settings that need no new listener take effect. */
  commit(): void;
  /** A later step of the apply failed: a moved listener goes back where it was. */
  undo(): Promise<void>;
}

const LISTENER_KEYS = ['allowed_hosts', 'enable_reload', 'basic_auth', 'tls'] as const;
const REBIND_GRACE_MS = 5_000;

/**
 * The status listener across reloads: started at the first apply, bound
 * again when server.listen changes or TLS or client certificates turn on or
 * off, given its other settings in place. The run command builds it with its
 * routes; the daemon applies it before the steps of an apply that can fail,
 * and closes it last.
 */
export class StatusListener {
  readonly #logger: Logger;
  readonly #routes = new Map<string, Handler>();
  #server: StatusServer | undefined;
  /** The server: settings of the last apply that went through. */
  #config: ServerConfig | undefined;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Its real address, once started. */
  get address(): string | undefined {
    return this.#server?.address;
  }

  /** Adds routes (before the first apply). */
  addRoutes(routes: Routes): void {
    for (const [key, handler] of routes) this.#routes.set(key, handler);
  }

  /** Starts or moves the listener for `config`; what it cannot change in place waits for commit(). */
  async apply(config: ServerConfig): Promise<ListenerChange> {
    // reads the password hash and certificate files: a bad one fails here, before anything changed
    const options = await listenerOptionsOf(config);
    const previous = this.#config;
    if (previous === undefined) {
      await this.#start(config.listen, options);
      const commit = (): void => {
        this.#config = config;
      };
      return { report: {}, commit, undo: () => Promise.resolve() };
    }
    const moved = config.listen !== previous.listen;
    const rebound = moved || (this.#server && needsNewListener(this.#server.options, options)) ? (this.#server?.options ?? {}) : undefined;
    if (rebound) await this.#rebind(config.listen, options);
    const server = LISTENER_KEYS.filter((k) => identityOf(config[k]) !== identityOf(previous[k]));
    return {
      report: { ...(moved ? { listen: { from: previous.listen, to: config.listen } } : {}), ...(server.length > 0 ? { server } : {}) },
      commit: () => {
        if (!rebound) this.#server?.configure(options);
        this.#config = config;
      },
      undo: async () => {
        if (rebound) await this.#rebind(previous.listen, rebound).catch(() => undefined);
      },
    };
  }

  close(): Promise<void> {
    return this.#server?.close() ?? Promise.resolve();
  }

  async #start(listen: string, options: ListenerOptions): Promise<void> {
    this.#server = await startStatusServer(listen, this.#routes, this.#logger, options);
    this.#logger.info({ listen: this.#server.address, tls: options.tls !== undefined, basic_auth: options.basicAuth !== undefined, reload: options.enableReload === true }, 'status listener up');
  }

  async #rebind(listen: string, options: ListenerOptions): Promise<void> {
    const old = this.#server;
    if (!old) return;
    const moved = await rebindStatusServer(old, listen, this.#routes, this.#logger, REBIND_GRACE_MS, options);
    if ('server' in moved) {
      this.#server = moved.server;
      this.#logger.info({ listen: moved.server.address, was: old.address }, 'status listener moved');
      return;
    }
    this.#server = moved.restored;
    throw moved.error;
  }
}
