import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { Server as TlsServer, ServerOptions as TlsServerOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { BasicAuthCheck } from './basic-auth.js';
import type { AuthOutcome } from './basic-auth.js';
import { checkCrossSite, checkHost } from './guard.js';
import type { Refusal } from './guard.js';
import { cpuProfile, heapProfile, ProfilerBusyError } from './self-profile.js';
import type { ListenerOptions } from './settings.js';

export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> | void;

export interface StatusServer {
  /** `host:port` it listens on (the real port when 0 was asked). */
  readonly address: string;
  /** The guard settings it answers with now. */
  readonly options: ListenerOptions;
  /**
   * Answers with new guard settings from the next request on, and reads
   * TLS certificates again; turning TLS or client certificates on or off
   * needs a new listener (see needsNewListener).
   */
  configure(options: ListenerOptions): void;
  /**
   * Stops listening at once (the port is free again right away), lets
   * requests in progress finish for up to `graceMs`, then cuts them.
   */
  close(graceMs?: number): Promise<void>;
}

/** The routes of the status listener: path → handler, GET unless the key says `POST /path`. */
export type Routes = ReadonlyMap<string, Handler>;

export function sendText(res: ServerResponse, status: number, text: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  sendText(res, status, JSON.stringify(value, null, 2) + '\n', 'application/json');
}

/** The longest CPU profile the daemon takes of itself: a longer one would keep its profiler from anyone else. */
export const MAX_SELF_PROFILE_SECONDS = 30;

/** Own /debug/pprof: heap and CPU (wall-clock) profiles of the daemon itself. */
export function pprofRoutes(): Map<string, Handler> {
  return new Map<string, Handler>([
    [
      '/debug/pprof/',
      (_req, res) =>
        sendText(res, 200, '<html><body><a href="heap">heap</a><br><a href="profile?seconds=5">profile?seconds=5</a></body></html>', 'text/html; charset=utf-8'),
    ],
    [
      '/debug/pprof/heap',
      async (_req, res) => {
        const body = await heapProfile();
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-disposition': 'attachment; filename="heap"' });
        res.end(body);
      },
    ],
    [
      '/debug/pprof/profile',
      async (_req, res, url) => {
        const given = url.searchParams.get('seconds');
        const seconds = Number(given ?? MAX_SELF_PROFILE_SECONDS);
        if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_SELF_PROFILE_SECONDS) {
          sendText(res, 400, `seconds=${(given ?? '').slice(0, 20)}: this daemon profiles itself for 1 to ${MAX_SELF_PROFILE_SECONDS} seconds at a time; ask for ${MAX_SELF_PROFILE_SECONDS} or fewer\n`);
          return;
        }
        try {
          const body = await cpuProfile(seconds);
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-disposition': 'attachment; filename="profile"' });
          res.end(body);
        } catch (err) {
          if (!(err instanceof ProfilerBusyError)) throw err;
          res.setHeader('retry-after', String(err.retryAfterSeconds));
          sendText(res, 429, `a CPU profile of this daemon is already running, and one runs at a time: retry in ${err.retryAfterSeconds} s\n`);
        }
      },
    ],
  ]);
}

/** Paths answered without credentials: health probes (the image's HEALTHCHECK) learn nothing from them. */
const AUTH_EXEMPT = new Set(['/healthz', '/-/healthy', '/-/ready']);
/** GETs that cost the daemon (a CPU profile): refused cross-site, like a POST. */
const COSTLY_GETS = new Set(['/debug/pprof/profile']);
const RELOAD_ROUTE = 'POST /-/reload';
const RELOAD_OFF =
  'POST /-/reload is off: set server.enable_reload: true in the config to allow it, or reload with SIGHUP ' +
  '(systemctl reload pprof-scraper, docker kill -s HUP <container>) or by saving the watched config file\n';
const REFUSALS_LOGGED_MAX = 100;

/** Whether going from one set of guard settings to another needs a new listener (http ↔ https, client certificates on or off). */
export function needsNewListener(from: ListenerOptions, to: ListenerOptions): boolean {
  return (from.tls === undefined) !== (to.tls === undefined) || (from.tls?.clientCa === undefined) !== (to.tls?.clientCa === undefined);
}

function tlsServerOptions(tls: NonNullable<ListenerOptions['tls']>): TlsServerOptions {
  return {
    cert: tls.cert,
    key: tls.key,
    minVersion: 'TLSv1.2',
    ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
  };
}

function authRefusal(outcome: Exclude<AuthOutcome, 'ok'>): Refusal {
  if (outcome === 'busy') {
    return { status: 429, text: 'too many logins being checked at once: retry in a second\n', headers: { 'retry-after': '1' } };
  }
  return {
    status: 401,
    text: outcome === 'missing' ? 'this listener asks for the user name and password of server.basic_auth\n' : 'wrong user name or password (server.basic_auth)\n',
    headers: { 'www-authenticate': 'Basic realm="pprof-scraper", charset="UTF-8"' },
  };
}

export async function startStatusServer(listen: string, routes: Routes, logger: Logger, options: ListenerOptions = {}): Promise<StatusServer> {
  // requests in progress, so a closing listener can end their connections after them
  const inFlight = new Set<ServerResponse>();
  let closing = false;
  const colon = listen.lastIndexOf(':');
  const listenHost = listen.slice(0, colon).replace(/^\[|\]$/g, '');
  const scheme = options.tls ? 'https' : 'http';
  let current = options;
  let auth = options.basicAuth ? new BasicAuthCheck(options.basicAuth.username, options.basicAuth.passwordHash) : undefined;
  const refusalsLogged = new Set<string>();

  const refuse = (req: IncomingMessage, res: ServerResponse, path: string, refusal: Refusal): void => {
    for (const [k, v] of Object.entries(refusal.headers ?? {})) res.setHeader(k, v);
    sendText(res, refusal.status, refusal.text);
    if (refusal.status === 401) return;
    // once per kind of refusal: a page that keeps trying must not flood the log
    const key = `${refusal.status} ${req.method ?? ''} ${path} ${req.headers.host ?? ''} ${req.headers.origin ?? ''}`;
    if (refusalsLogged.has(key) || refusalsLogged.size >= REFUSALS_LOGGED_MAX) return;
    refusalsLogged.add(key);
    logger.warn({ method: req.method, path, host: req.headers.host, origin: req.headers.origin, status: refusal.status, reason: refusal.text.trim() }, 'status listener refused a request');
  };

  const serve = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const opts = current;
    const badHost = checkHost(req.headers.host, listenHost, opts.allowedHosts ?? []);
    if (badHost) return refuse(req, res, url.pathname, badHost);
    if (auth && !AUTH_EXEMPT.has(url.pathname)) {
      const outcome = await auth.check(req.headers.authorization);
      if (outcome !== 'ok') return refuse(req, res, url.pathname, authRefusal(outcome));
    }
    const method = req.method ?? '';
    const key = method === 'GET' || method === 'HEAD' ? url.pathname : `${method} ${url.pathname}`;
    const handler = routes.get(key);
    if (!handler) {
      const other = method === 'GET' ? routes.get(`POST ${url.pathname}`) : routes.get(url.pathname);
      if (other) sendText(res, 405, `method ${method} not allowed here\n`);
      else sendText(res, 404, 'not found\n');
      return;
    }
    if (key !== url.pathname || COSTLY_GETS.has(key)) {
      const own = `${scheme}://${req.headers.host ?? listen}`;
      const crossSite = checkCrossSite(req.headers, method, own, `${method} ${url.pathname}`);
      if (crossSite) return refuse(req, res, url.pathname, crossSite);
    }
    if (key === RELOAD_ROUTE && opts.enableReload !== true) return refuse(req, res, url.pathname, { status: 403, text: RELOAD_OFF });
    await handler(req, res, url);
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    // a kept-alive connection must not reach a listener that has moved on
    if (closing) res.shouldKeepAlive = false;
    inFlight.add(res);
    res.once('close', () => inFlight.delete(res));
    const url = new URL(req.url ?? '/', 'http://status');
    Promise.resolve()
      .then(() => serve(req, res, url))
      .catch((err: unknown) => {
        logger.error({ path: url.pathname, error: err instanceof Error ? err.message : String(err) }, 'status server handler failed');
        if (!res.headersSent) sendText(res, 500, 'internal error\n');
        else res.destroy();
      });
  };
  const server: Server | TlsServer = options.tls ? createTlsServer(tlsServerOptions(options.tls), onRequest) : createServer(onRequest);
  server.keepAliveTimeout = 5_000;
  const host = listenHost || '0.0.0.0';
  const port = Number(listen.slice(colon + 1));
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(new Error(`server.listen ${listen}: ${err.code === 'EADDRINUSE' ? 'the address is in use (another pprof-scraper?); set server.listen to a free one' : err.message}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  return {
    address: addr.family === 'IPv6' ? `[${addr.address}]:${addr.port}` : `${addr.address}:${addr.port}`,
    get options() {
      return current;
    },
    configure(next: ListenerOptions): void {
      if (needsNewListener(current, next)) throw new Error('the status listener cannot turn TLS or client certificates on or off in place: bind a new one');
      if (next.tls && 'setSecureContext' in server) server.setSecureContext(tlsServerOptions(next.tls));
      const was = current.basicAuth;
      const now = next.basicAuth;
      if (!now) auth = undefined;
      else if (!was || was.username !== now.username || was.passwordHash.reveal() !== now.passwordHash.reveal()) auth = new BasicAuthCheck(now.username, now.passwordHash);
      current = next;
    },
    close: (graceMs = 0) =>
      new Promise<void>((resolve) => {
        closing = true;
        for (const res of inFlight) {
          if (!res.headersSent) res.shouldKeepAlive = false;
          else res.once('finish', () => res.socket?.destroySoon());
        }
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        server.closeIdleConnections();
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        timer.unref();
      }),
  };
}

const REBIND_ATTEMPTS = 6;

async function listenWithRetry(listen: string, routes: Routes, logger: Logger, options: ListenerOptions): Promise<StatusServer> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await startStatusServer(listen, routes, logger, options);
    } catch (err) {
      // the old listener's port may take a loop turn to be released
      const inUse = ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';
      if (!inUse || attempt + 1 >= REBIND_ATTEMPTS) throw err;
      await new Promise((r) => setTimeout(r, 25 * 2 ** attempt));
    }
  }
}

/**
 * Moves the listener to a new address (a reload changed server.listen). The
 * old one stops listening first, so host-only changes on one port work;
 * requests it is answering (the POST /-/reload that asked for this) get
 * `graceMs`. If the new address cannot be bound, the old one is bound
 * again, with its old settings, and the error says why.
 */
export async function rebindStatusServer(
  old: StatusServer,
  listen: string,
  routes: Routes,
  logger: Logger,
  graceMs: number,
  options: ListenerOptions = old.options,
): Promise<{ server: StatusServer } | { error: Error; restored: StatusServer | undefined }> {
  void old.close(graceMs);
  try {
    return { server: await listenWithRetry(listen, routes, logger, options) };
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    try {
      return { error, restored: await listenWithRetry(old.address, routes, logger, old.options) };
    } catch (again) {
      logger.error({ listen: old.address, error: again instanceof Error ? again.message : String(again) }, 'could not bind the old status listener again: no status listener now');
      return { error, restored: undefined };
    }
  }
}
