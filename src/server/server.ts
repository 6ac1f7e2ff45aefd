import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { cpuProfile, heapProfile, ProfilerBusyError } from './self-profile.js';

export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> | void;

export interface StatusServer {
  /** `host:port` it listens on (the real port when 0 was asked). */
  readonly address: string;
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
        const seconds = Number(url.searchParams.get('seconds') ?? '30');
        if (!Number.isInteger(seconds) || seconds < 1 || seconds > 300) {
          sendText(res, 400, 'seconds must be a whole number from 1 to 300\n');
          return;
        }
        try {
          const body = await cpuProfile(seconds);
          res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-disposition': 'attachment; filename="profile"' });
          res.end(body);
        } catch (err) {
          if (err instanceof ProfilerBusyError) sendText(res, 500, 'Could not enable CPU profiling: cpu profiling already in use\n');
          else throw err;
        }
      },
    ],
  ]);
}

export async function startStatusServer(listen: string, routes: Routes, logger: Logger): Promise<StatusServer> {
  // requests in progress, so a closing listener can end their connections after them
  const inFlight = new Set<ServerResponse>();
  let closing = false;
  const server: Server = createServer((req, res) => {
    // a kept-alive connection must not reach a listener that has moved on
    if (closing) res.shouldKeepAlive = false;
    inFlight.add(res);
    res.once('close', () => inFlight.delete(res));
    const url = new URL(req.url ?? '/', 'http://status');
    const key = req.method === 'GET' || req.method === 'HEAD' ? url.pathname : `${req.method ?? ''} ${url.pathname}`;
    const handler = routes.get(key);
    if (!handler) {
      const other = req.method === 'GET' ? routes.get(`POST ${url.pathname}`) : routes.get(url.pathname);
      if (other) sendText(res, 405, `method ${req.method ?? ''} not allowed here\n`);
      else sendText(res, 404, 'not found\n');
      return;
    }
    Promise.resolve()
      .then(() => handler(req, res, url))
      .catch((err: unknown) => {
        logger.error({ path: url.pathname, error: err instanceof Error ? err.message : String(err) }, 'status server handler failed');
        if (!res.headersSent) sendText(res, 500, 'internal error\n');
        else res.destroy();
      });
  });
  server.keepAliveTimeout = 5_000;
  const colon = listen.lastIndexOf(':');
  const host = listen.slice(0, colon).replace(/^\[|\]$/g, '') || '0.0.0.0';
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

async function listenWithRetry(listen: string, routes: Routes, logger: Logger): Promise<StatusServer> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await startStatusServer(listen, routes, logger);
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
 * again and the error says why.
 */
export async function rebindStatusServer(
  old: StatusServer,
  listen: string,
  routes: Routes,
  logger: Logger,
  graceMs: number,
): Promise<{ server: StatusServer } | { error: Error; restored: StatusServer | undefined }> {
  void old.close(graceMs);
  try {
    return { server: await listenWithRetry(listen, routes, logger) };
  } catch (err) {
    const error = err instanceof Error ? err : new Error(String(err));
    try {
      return { error, restored: await listenWithRetry(old.address, routes, logger) };
    } catch (again) {
      logger.error({ listen: old.address, error: again instanceof Error ? again.message : String(again) }, 'could not bind the old status listener again: no status listener now');
      return { error, restored: undefined };
    }
  }
}
