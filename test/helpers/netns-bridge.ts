/**
 * Makes loopback servers of the test process (fakes) reachable at fixed
 * loopback addresses inside another network namespace (a booted VM's), by
 * way of Unix sockets, which are files and so cross namespaces:
 *
 *   inside the namespace              the test's namespace
 *   127.0.0.1:4040 ──► bridge-0.sock ──► 127.0.0.1:<the fake's port>
 *
 * The inside half is this file run as a script under `nsenter --net`; the
 * outside half runs in the test process. Only loopback addresses on both
 * sides.
 */
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface Route {
  /** host:port to listen on inside the namespace. */
  readonly inside: string;
  /** host:port to reach in the test's namespace. */
  readonly to: string;
}

export interface NetnsBridge {
  close(): Promise<void>;
}

const SELF = fileURLToPath(import.meta.url);
const REPO = fileURLToPath(new URL('../../', import.meta.url));

function hostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}

/** Joins two sockets both ways; either one ending or failing closes both. */
function splice(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  const end = (): void => {
    a.destroy();
    b.destroy();
  };
  for (const s of [a, b]) {
    s.on('error', end);
    s.on('close', end);
  }
}

function listen(server: Server, where: string | { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      resolve();
    };
    if (typeof where === 'string') server.listen(where, done);
    else server.listen(where.port, where.host, done);
  });
}

/** Starts both halves; resolves once every inside address listens. */
export async function bridgeIntoNetns(netns: string, dir: string, routes: readonly Route[]): Promise<NetnsBridge> {
  const servers: Server[] = [];
  const sockets = routes.map((_, i) => join(dir, `bridge-${i}.sock`));
  for (const [i, route] of routes.entries()) {
    const to = hostPort(route.to);
    const server = createServer((inbound) => splice(inbound, connect(to.port, to.host)));
    await rm(sockets[i]!, { force: true });
    await listen(server, sockets[i]!);
    servers.push(server);
  }
  const spec = JSON.stringify(routes.map((r, i) => ({ inside: r.inside, socket: sockets[i] })));
  const inside = spawn('nsenter', [`--net=${netns}`, '--', process.execPath, '--import', 'tsx', SELF, spec], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  inside.stdout.setEncoding('utf8').on('data', (s: string) => (output += s));
  inside.stderr.setEncoding('utf8').on('data', (s: string) => (output += s));
  const closeOutside = async (): Promise<void> => {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    await Promise.all(sockets.map((s) => rm(s, { force: true })));
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the bridge inside ${netns} did not start within 30 s: ${output}`)), 30_000);
      inside.stdout.on('data', () => {
        if (output.includes('bridged\n')) {
          clearTimeout(timer);
          resolve();
        }
      });
      inside.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the bridge inside ${netns} exited (${code ?? signal}): ${output}`));
      });
    });
  } catch (err) {
    inside.kill('SIGKILL');
    await closeOutside();
    throw err;
  }
  return {
    async close() {
      if (inside.exitCode === null && inside.signalCode === null) {
        const exited = new Promise((resolve) => inside.once('exit', resolve));
        inside.kill('SIGTERM');
        await exited;
      }
      await closeOutside();
    },
  };
}

/** The inside half: listens on each address and hands every connection to its socket. */
async function inside(spec: { inside: string; socket: string }[]): Promise<void> {
  for (const route of spec) {
    const server = createServer((inbound) => splice(inbound, connect(route.socket)));
    await listen(server, hostPort(route.inside));
  }
  process.stdout.write('bridged\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  inside(JSON.parse(process.argv[2] ?? '[]') as { inside: string; socket: string }[]).catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
}
