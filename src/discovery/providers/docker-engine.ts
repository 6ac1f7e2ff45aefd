import { readFile } from 'node:fs/promises';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { join } from 'node:path';
import type { DockerConfig } from '../../config/index.js';
import { DiscoveryError } from '../provider.js';

export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';

/** How to reach one Docker engine. */
export interface DockerEndpoint {
  /** The engine as errors and logs name it: unix:///var/run/docker.sock, tcp://10.0.0.5:2376. */
  readonly description: string;
  readonly options: DockerConnection;
}

/** A unix socket, or a TCP host and port with or without TLS. */
export interface DockerConnection {
  readonly socketPath?: string | undefined;
  readonly host?: string | undefined;
  readonly port?: number | undefined;
  readonly protocol: 'http' | 'https';
  readonly ca?: Buffer | undefined;
  readonly cert?: Buffer | undefined;
  readonly key?: Buffer | undefined;
  /** Owned by the endpoint: destroyed when the provider closes. */
  readonly agent: HttpAgent;
}

/**
 * Reads `host` (else DOCKER_HOST, else the local socket) and the engine's TLS
 * files. With DOCKER_HOST and no `tls`, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH
 * apply as the docker CLI reads them.
 */
export async function resolveDockerEndpoint(config: DockerConfig, env: NodeJS.ProcessEnv, where: string): Promise<DockerEndpoint> {
  const fromEnv = config.host === undefined && (env['DOCKER_HOST'] ?? '').trim() !== '';
  const host = config.host ?? (fromEnv ? (env['DOCKER_HOST'] ?? '').trim() : DEFAULT_DOCKER_HOST);
  const origin = fromEnv ? `DOCKER_HOST ${JSON.stringify(host)}` : `host ${JSON.stringify(host)}`;

  if (host.startsWith('unix://')) {
    const socketPath = host.slice('unix://'.length);
    if (socketPath === '') throw new DiscoveryError(`${where}: ${origin} names no socket: use unix:///var/run/docker.sock`);
    return { description: host, options: { socketPath, protocol: 'http', agent: new HttpAgent() } };
  }

  const withScheme = /^[a-z]+:\/\//i.test(host) ? host : `tcp://${host}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new DiscoveryError(`${where}: ${origin} is not an address: use unix:///path/to/docker.sock or tcp://host:port`);
  }
  const scheme = url.protocol.slice(0, -1);
  if (scheme !== 'tcp' && scheme !== 'http' && scheme !== 'https') {
    throw new DiscoveryError(`${where}: ${origin}: ${scheme}:// is not supported: use unix:///path/to/docker.sock or tcp://host:port`);
  }
  if (url.hostname === '') throw new DiscoveryError(`${where}: ${origin} names no host: use tcp://host:port`);

  const files = await tlsFiles(config, env, fromEnv, where);
  const tls = scheme === 'https' || files.ca !== undefined || files.cert !== undefined || (fromEnv && env['DOCKER_TLS_VERIFY'] === '1');
  const port = url.port !== '' ? Number(url.port) : tls ? 2376 : 2375;
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const description = `${scheme}://${url.hostname}:${port}`;
  const agent = tls ? new HttpsAgent() : new HttpAgent();
  return {
    description,
    options: { host: hostname, port, protocol: tls ? 'https' : 'http', ...files, agent },
  };
}

async function tlsFiles(config: DockerConfig, env: NodeJS.ProcessEnv, fromEnv: boolean, where: string): Promise<{ ca?: Buffer; cert?: Buffer; key?: Buffer }> {
  const tls = config.tls;
  const paths: { ca?: string | undefined; cert?: string | undefined; key?: string | undefined } =
    tls?.ca !== undefined || tls?.cert !== undefined || tls?.key !== undefined
      ? { ca: tls.ca, cert: tls.cert, key: tls.key }
      : fromEnv && env['DOCKER_CERT_PATH']
        ? { ca: join(env['DOCKER_CERT_PATH'], 'ca.pem'), cert: join(env['DOCKER_CERT_PATH'], 'cert.pem'), key: join(env['DOCKER_CERT_PATH'], 'key.pem') }
        : {};
  const out: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
  for (const key of ['ca', 'cert', 'key'] as const) {
    const path = paths[key];
    if (path === undefined) continue;
    try {
      out[key] = await readFile(path);
    } catch (err) {
      throw new DiscoveryError(`${where}.tls.${key}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
    }
  }
  return out;
}

const UNREACHABLE = new Set(['ENOENT', 'ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);

/** Turns what a call to the engine threw into what the operator reads: what failed, where, and what to do. */
export function dockerError(err: unknown, endpoint: string, what: string): DiscoveryError {
  const e = err as NodeJS.ErrnoException & { statusCode?: number; json?: unknown };
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const message = err instanceof Error ? err.message.trim() : String(err);
  if (code === 'EACCES' || code === 'EPERM') {
    return new DiscoveryError(
      `cannot reach the Docker engine at ${endpoint}: ${message}: the daemon's user may not open the socket: add it to the docker group (SupplementaryGroups=docker under systemd)`,
      { code, cause: err },
    );
  }
  if (code !== undefined && UNREACHABLE.has(code)) {
    return new DiscoveryError(`cannot reach the Docker engine at ${endpoint}: ${message}: is dockerd running, and is the daemon's user in the docker group?`, { code, cause: err });
  }
  if (code !== undefined && (/CERT|TLS|SSL|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/.test(code) || code === 'EPROTO')) {
    // OpenSSL's own text ("803C…:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert bad certificate:…") reduced to its reason
    const reason = /SSL routines:[^:]*:([^:]+)/.exec(message)?.[1] ?? message;
    const hint = /alert (bad certificate|certificate required|unknown ca)/.test(reason)
      ? 'the engine did not accept this client: give the docker block tls cert and key signed by the CA that dockerd --tlsverify trusts'
      : 'check the docker block\'s tls ca (the CA that signed the engine\'s certificate), cert and key';
    return new DiscoveryError(`TLS with the Docker engine at ${endpoint} failed: ${reason}: ${hint}`, { code, cause: err });
  }
  if (typeof e?.statusCode === 'number') {
    // dockerode hands over the engine's JSON answer, or its raw body (a Buffer) when it was not JSON
    const body = e.json as { message?: unknown } | Buffer | string | undefined;
    const raw = Buffer.isBuffer(body) || typeof body === 'string' ? body.toString().trim() : undefined;
    const detail = (raw || (typeof body === 'object' && body !== null && 'message' in body && typeof body.message === 'string' ? body.message : message.replace(/^\(HTTP code \d+\) /, ''))).trim();
    const hint = /HTTP request to an HTTPS server/i.test(detail)
      ? ': the engine speaks TLS: use the docker block\'s tls ca, cert and key'
      : /filter/i.test(detail)
        ? ': check the docker block\'s filters (Docker\'s own filter names: label, name, network, ...)'
        : e.statusCode === 401 || e.statusCode === 403
          ? ': the engine refused this client'
          : '';
    return new DiscoveryError(`the Docker engine at ${endpoint} answered HTTP ${e.statusCode} to ${what}: ${detail}${hint}`, { code: String(e.statusCode), cause: err });
  }
  return new DiscoveryError(`${what} on the Docker engine at ${endpoint} failed: ${message}`, { code, cause: err });
}
