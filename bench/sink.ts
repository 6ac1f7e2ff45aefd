/**
 * The bench's profefe and Pyroscope: profefe's routes and query rules as the
 * test fake has them (test/helpers/profefe-contract.ts), and Pyroscope's push
 * (`POST /push.v1.PusherService/Push`, a Connect call with a protobuf
 * PushRequest, decoded and its labels checked by test/helpers/pyroscope-fake.ts's
 * functions). Neither decodes pprof, so it stays cheap next to the process
 * being measured. It counts profiles by type (profefe's `type`, Pyroscope's
 * `__name__`; a Pyroscope profile is one raw sample of a series) and bytes.
 *
 *   node --import tsx bench/sink.ts [--host 127.0.0.1] [--port 0]
 *
 * Prints "listening on HOST:PORT" and then "ready". GET /stats answers the
 * counts as JSON; POST /reset zeroes them.
 */
import {createServer} from 'node:http';
import type {IncomingMessage, ServerResponse} from 'node:http';
import type {AddressInfo} from 'node:net';
import {parseArgs} from 'node:util';
import {countBody, parseWriteParams, replyJson, replyNonWrite, routeProfefe} from '../test/helpers/profefe-contract.js';
import {checkSeries, decodePushRequest, PUSH_PATH} from '../test/helpers/pyroscope-fake.js';
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

function reject(counts: Counts, res: ServerResponse, status: number, body: {code: string; message: string}): void {
  counts.rejected[String(status)] = (counts.rejected[String(status)] ?? 0) + 1;
  res.writeHead(status, {'content-type': 'application/json'});
  res.end(JSON.stringify(body));
}

/** Pyroscope's distributor, as far as the daemon can tell: Connect errors as JSON {code, message}. */
function pyroscopePush(req: IncomingMessage, res: ServerResponse, counts: Counts): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.once('error', () => {
    // The client hung up mid-body: nothing to answer.
  });
  req.once('end', () => {
    if (req.method !== 'POST') return reject(counts, res, 404, {code: 'unimplemented', message: `${req.method} ${PUSH_PATH}`});
    if ((req.headers['content-type'] ?? '').split(';')[0]?.trim() !== 'application/proto') {
      return reject(counts, res, 415, {code: 'unimplemented', message: 'content-type must be application/proto'});
    }
    const body = Buffer.concat(chunks);
    let series;
    try {
      series = decodePushRequest(body);
    } catch (err) {
      return reject(counts, res, 400, {code: 'invalid_argument', message: `decoding PushRequest: ${(err as Error).message}`});
    }
    for (const s of series) {
      const problem = checkSeries(s);
      if (problem) return reject(counts, res, 400, {code: 'invalid_argument', message: problem});
      if (s.samples.some((x) => x.raw.length === 0)) return reject(counts, res, 400, {code: 'invalid_argument', message: 'failed to parse profile: empty'});
    }
    const now = Date.now();
    for (const s of series) {
      const name = (s.labels.find(([k]) => k === '__name__')?.[1] ?? '').split(':')[0]!;
      const service = s.labels.find(([k]) => k === 'service_name')?.[1] ?? '';
      for (const sample of s.samples) {
        counts.received[name] = (counts.received[name] ?? 0) + 1;
        counts.total++;
        counts.bytes += sample.raw.length;
      }
      counts.services.add(service);
    }
    counts.firstAt ??= now;
    counts.lastAt = now;
    res.writeHead(200, {'content-type': 'application/proto'});
    res.end();
  });
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
    if (url === PUSH_PATH) {
      pyroscopePush(req, res, counts);
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
