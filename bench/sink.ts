/**
 * The bench's profefe: the same routes and query rules as the test fake
 * (test/helpers/profefe-contract.ts) but no pprof decoding, so it stays cheap
 * next to the process being measured. It counts profiles by type and bytes.
 *
 *   node --import tsx bench/sink.ts [--host 127.0.0.1] [--port 0]
 *
 * Prints "listening on HOST:PORT" and then "ready". GET /stats answers the
 * counts as JSON; POST /reset zeroes them.
 */
import {createServer} from 'node:http';
import type {AddressInfo} from 'node:net';
import {parseArgs} from 'node:util';
import {countBody, parseWriteParams, replyJson, replyNonWrite, routeProfefe} from '../test/helpers/profefe-contract.js';
import {parseWhole, runMain} from './lib/flags.js';

interface Counts {
  received: Record<string, number>;
  total: number;
  bytes: number;
  /** Refused writes by status. */
  rejected: Record<string, number>;
  services: Set<string>;
  firstAt: number | null;
  lastAt: number | null;
}

function zeroCounts(): Counts {
  return {received: {}, total: 0, bytes: 0, rejected: {}, services: new Set(), firstAt: null, lastAt: null};
}

async function main(): Promise<void> {
  const {values} = parseArgs({options: {host: {type: 'string', default: '127.0.0.1'}, port: {type: 'string', default: '0'}}});
  const port = parseWhole(values.port, '--port', 0, 65535);
  let counts = zeroCounts();
  let nextId = 0;

  const server = createServer((req, res) => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    if (url === '/stats' && method === 'GET') {
      const {services, ...rest} = counts;
      res.writeHead(200, {'content-type': 'application/json'});
      res.end(JSON.stringify({...rest, services: services.size}));
      req.resume();
      return;
    }
    if (url === '/reset' && method === 'POST') {
      counts = zeroCounts();
      res.writeHead(204).end();
      req.resume();
      return;
    }
    const route = routeProfefe(method, url);
    if (route.kind !== 'write') {
      req.resume();
      replyNonWrite(route, res, {version: 'bench-sink'});
      return;
    }
    const parsed = parseWriteParams(route.query);
    countBody(req).then(
      (bytes) => {
        if (!parsed.ok) {
          counts.rejected['400'] = (counts.rejected['400'] ?? 0) + 1;
          replyJson(res, 400, {error: `bad request: ${parsed.error}`});
          return;
        }
        // profefe's parser refuses an empty body with a 400 (HandleCreateProfile); the sink checks nothing deeper.
        if (bytes === 0) {
          counts.rejected['400'] = (counts.rejected['400'] ?? 0) + 1;
          replyJson(res, 400, {error: 'malformed profile (could not parse pprof profile: empty input file)'});
          return;
        }
        const {type, service} = parsed.params;
        counts.received[type] = (counts.received[type] ?? 0) + 1;
        counts.total++;
        counts.bytes += bytes;
        counts.services.add(service);
        const now = Date.now();
        counts.firstAt ??= now;
        counts.lastAt = now;
        replyJson(res, 200, {body: {id: (nextId++).toString(36), type, service}});
      },
      () => {
        // The client hung up mid-body: nothing to answer.
      },
    );
  });
  // Clients keep connections as long as they like, as with Go's server.
  server.keepAliveTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({port, host: values.host, backlog: 1024}, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  process.stdout.write(`listening on ${host}:${addr.port}\nready\n`);

  const shutdown = (): void => {
    server.close();
    server.closeAllConnections();
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

runMain('sink', main);
