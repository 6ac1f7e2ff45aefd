/**
 * Helpers for the operator tests: a pprof target that counts its requests,
 * a config that scrapes such targets, a forwarding proxy that shows when a
 * request is in flight, and small HTTP, /targets and log-output readers.
 */
import assert from 'node:assert/strict';
import { createServer, request as httpRequest } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { request } from 'undici';
import type { Agent } from 'undici';
import { fixture } from './profiles.js';

export const HEAP_FIXTURE = fixture('heap');

export interface Hit {
  readonly path: string;
  readonly at: number;
}

export interface FakePprofTarget {
  /** host:port */
  readonly address: string;
  /** Every request, in arrival order. */
  readonly hits: Hit[];
  /** Requests answered in full. */
  readonly answered: () => number;
  close(): Promise<void>;
}

export interface FakePprofOptions {
  readonly host?: string;
  /** Holds every answer back this long. */
  readonly delayMs?: number;
  /** Answers this instead of a profile (an error page). */
  readonly reply?: { status: number; contentType: string; body: string };
}

/** An HTTP server that answers every /debug/pprof/* request with a real heap profile. */
export async function startFakePprofTarget(options: FakePprofOptions = {}): Promise<FakePprofTarget> {
  const hits: Hit[] = [];
  let answered = 0;
  const server = createServer((req, res) => {
    hits.push({ path: req.url ?? '/', at: Date.now() });
    const answer = (): void => {
      if (res.destroyed) return;
      if (options.reply) {
        res.writeHead(options.reply.status, { 'content-type': options.reply.contentType });
        res.end(options.reply.body);
      } else {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(HEAP_FIXTURE);
      }
      answered++;
    };
    if (options.delayMs) setTimeout(answer, options.delayMs);
    else answer();
  });
  await new Promise<void>((resolve) => server.listen(0, options.host ?? '127.0.0.1', resolve));
  const { address, port } = server.address() as AddressInfo;
  return {
    address: `${address}:${port}`,
    hits,
    answered: () => answered,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * A daemon config that scrapes the heap of each target hourly, as the service
 * it is keyed by, into `dir`/profiles, with its state in `dir`/state;
 * `server` is what goes inside `server: {…}`.
 */
export function fakeTargetsConfig(dir: string, targets: Record<string, FakePprofTarget>, server: string): string {
  const list = Object.entries(targets).map(([service, t]) => `        - {address: "${t.address}", service: ${service}}`);
  return `scrape: {interval: 1h}
profiles:
  heap: {path: /debug/pprof/heap}
discovery:
  - static:
      targets:
${list.join('\n')}
repositories:
  - directory: {path: "${join(dir, 'profiles')}"}
server: {${server}}
state_dir: "${join(dir, 'state')}"
`;
}

export interface RecordingProxy {
  readonly address: string;
  /** Requests that arrived, with when they were answered (undefined while in flight). */
  readonly requests: { path: string; startedAt: number; endedAt: number | undefined; status: number | undefined }[];
  close(): Promise<void>;
}

/** Forwards every request to `upstream` (host:port), `delayMs` late, and records when each starts and ends. */
export async function startRecordingProxy(upstream: string, options: { delayMs?: number } = {}): Promise<RecordingProxy> {
  const colon = upstream.lastIndexOf(':');
  const host = upstream.slice(0, colon);
  const port = Number(upstream.slice(colon + 1));
  const requests: RecordingProxy['requests'] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const rec: RecordingProxy['requests'][number] = { path: req.url ?? '/', startedAt: Date.now(), endedAt: undefined, status: undefined };
    requests.push(rec);
    const up = httpRequest({ host, port, path: req.url, method: req.method, headers: req.headers }, (upRes) => {
      rec.status = upRes.statusCode;
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
      upRes.on('end', () => {
        rec.endedAt = Date.now();
      });
    });
    up.on('error', () => res.destroy());
    if (options.delayMs) {
      req.pause();
      setTimeout(() => req.pipe(up), options.delayMs);
    } else {
      req.pipe(up);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: own } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${own}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Log records from a child's JSON-lines output. */
export function logRecords(output: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      // a line still being written
    }
  }
  return out;
}

export async function httpGet(url: string): Promise<{ status: number; text: string; headers: Record<string, string | string[] | undefined> }> {
  const res = await request(url);
  return { status: res.statusCode, text: await res.body.text(), headers: res.headers };
}

export async function httpPost(url: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const res = await request(url, { method: 'POST', headers });
  return { status: res.statusCode, text: await res.body.text() };
}

/** The services of the daemon's targets (GET /targets, which must answer 200), sorted. */
export async function services(base: string, headers: Record<string, string> = {}, dispatcher?: Agent): Promise<string[]> {
  const res = await request(`${base}/targets`, { headers, ...(dispatcher ? { dispatcher } : {}) });
  const text = await res.body.text();
  assert.equal(res.statusCode, 200, text);
  return (JSON.parse(text) as { targets: { service: string }[] }).targets.map((t) => t.service).sort();
}
