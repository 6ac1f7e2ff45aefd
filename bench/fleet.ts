/**
 * The simulated fleet: N Go services' pprof endpoints, one address each,
 * serving the captured fixture profiles.
 *
 *   node --import tsx bench/fleet.ts --targets 1000 [--port 6060] [--stats-port 0] [--cpu-delay] [--grow] [--first 0]
 *
 * Target i (from --first, 0 by default, so that several fleet processes can
 * share a fleet larger than one process's descriptor limit) listens on 127.0.{1+floor(i/250)}.{1+i%250}:port. With --cpu-delay
 * /debug/pprof/profile?seconds=N answers after N seconds, as Go does, and a
 * second CPU profile asked of a target while one runs gets Go's 500 "cpu
 * profiling already in use"; without it the CPU fixture is served at once.
 * With --grow the cumulative counters of every profile rise with time and
 * TimeNanos is now (lib/growing.ts), for a repository that sends deltas.
 *
 * Prints "stats on 127.0.0.1:PORT" and then "ready" once every listener is
 * bound. GET /stats there answers the counts as JSON; POST /reset zeroes them.
 */
import {readFileSync} from 'node:fs';
import {createServer} from 'node:http';
import type {IncomingMessage, Server, ServerResponse} from 'node:http';
import type {AddressInfo} from 'node:net';
import {join} from 'node:path';
import {parseArgs} from 'node:util';
import {parseWhole, runMain, UsageError} from './lib/flags.js';
import {growing} from './lib/growing.js';
import {FLEET_TYPES, MAX_TARGETS, targetHost} from './lib/layout.js';
import {FIXTURES_DIR} from './lib/paths.js';
import type {FleetType} from './lib/layout.js';

interface Counts {
  served: Record<FleetType, number>;
  bytes: number;
  notFound: number;
  cpuConflicts: number;
  aborted: number;
}

function zeroCounts(): Counts {
  return {served: Object.fromEntries(FLEET_TYPES.map((t) => [t, 0])) as Record<FleetType, number>, bytes: 0, notFound: 0, cpuConflicts: 0, aborted: 0};
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({port, host, backlog: 511}, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

async function main(): Promise<void> {
  const {values} = parseArgs({
    options: {
      targets: {type: 'string'},
      port: {type: 'string', default: '6060'},
      'stats-port': {type: 'string', default: '0'},
      'cpu-delay': {type: 'boolean', default: false},
      grow: {type: 'boolean', default: false},
      first: {type: 'string', default: '0'},
    },
  });
  if (values.targets === undefined) throw new UsageError('--targets N is required');
  const n = parseWhole(values.targets, '--targets', 1, MAX_TARGETS);
  const first = parseWhole(values.first, '--first', 0, MAX_TARGETS - n);
  const port = parseWhole(values.port, '--port', 1, 65535);
  const statsPort = parseWhole(values['stats-port'], '--stats-port', 0, 65535);
  const cpuDelay = values['cpu-delay'];

  const startedAt = Date.now();
  const fixtures = new Map<FleetType, Buffer>(FLEET_TYPES.map((t) => [t, readFileSync(join(FIXTURES_DIR, `${t}.pb.gz`))]));
  const grown = values.grow ? new Map(FLEET_TYPES.map((t) => [t, growing(fixtures.get(t)!, startedAt)])) : undefined;
  const bodyOf = (type: FleetType): Buffer => {
    const g = grown?.get(type);
    return g ? g.body() : fixtures.get(type)!;
  };
  let counts = zeroCounts();
  // Go's pprof allows one CPU profile per process: one per target address here.
  const cpuBusy = new Set<string>();

  const serve = (res: ServerResponse, type: FleetType): void => {
    const body = bodyOf(type);
    // The headers net/http/pprof sends.
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-disposition': `attachment; filename="${type === 'cpu' ? 'profile' : type}"`,
      'x-content-type-options': 'nosniff',
      'content-length': body.length,
    });
    res.end(body);
    counts.served[type]++;
    counts.bytes += body.length;
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://fleet');
    const name = url.pathname.startsWith('/debug/pprof/') ? url.pathname.slice('/debug/pprof/'.length) : '';
    if (name === 'profile') {
      const seconds = Number(url.searchParams.get('seconds') ?? '30');
      if (!cpuDelay) return serve(res, 'cpu');
      const target = req.socket.localAddress ?? '';
      if (cpuBusy.has(target)) {
        counts.cpuConflicts++;
        res.writeHead(500, {'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff'});
        res.end('Could not enable CPU profiling: cpu profiling already in use\n');
        return;
      }
      cpuBusy.add(target);
      const timer = setTimeout(() => {
        cpuBusy.delete(target);
        serve(res, 'cpu');
      }, Math.max(0, seconds) * 1000);
      // A client that gives up frees the profiler, as in Go.
      res.once('close', () => {
        if (!res.writableEnded) {
          clearTimeout(timer);
          cpuBusy.delete(target);
          counts.aborted++;
        }
      });
      return;
    }
    const type = FLEET_TYPES.find((t) => t === name && t !== 'cpu');
    if (type === undefined) {
      counts.notFound++;
      res.writeHead(404, {'content-type': 'text/plain; charset=utf-8'});
      res.end('404 page not found\n');
      return;
    }
    serve(res, type);
  };

  const servers: Server[] = [];
  for (let i = first; i < first + n; i++) {
    const server = createServer(handler);
    // Go's http.Server keeps idle connections open indefinitely; the client
    // decides when to close them.
    server.keepAliveTimeout = 0;
    try {
      await listen(server, port, targetHost(i));
    } catch (err) {
      for (const s of servers) s.close();
      throw new Error(`cannot listen on ${targetHost(i)}:${port} (target ${i}, ${first}..${first + n - 1}): ${(err as Error).message}`, {cause: err});
    }
    servers.push(server);
  }

  const stats = createServer((req, res) => {
    if (req.url === '/stats' && req.method === 'GET') {
      const served = Object.values(counts.served).reduce((a, b) => a + b, 0);
      const doc = {targets: n, first, port, cpuDelay, grow: values.grow, uptimeMs: Date.now() - startedAt, total: served, ...counts};
      res.writeHead(200, {'content-type': 'application/json'});
      res.end(JSON.stringify(doc));
    } else if (req.url === '/reset' && req.method === 'POST') {
      counts = zeroCounts();
      res.writeHead(204).end();
    } else {
      res.writeHead(404).end();
    }
  });
  await listen(stats, statsPort, '127.0.0.1');
  process.stdout.write(`stats on 127.0.0.1:${(stats.address() as AddressInfo).port}\nready\n`);

  const shutdown = (): void => {
    stats.close();
    for (const s of servers) {
      s.close();
      s.closeAllConnections();
    }
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

runMain('fleet', main);
