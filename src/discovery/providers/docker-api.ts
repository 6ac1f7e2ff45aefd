import { request as httpRequest } from 'node:http';
import type { IncomingMessage, RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { DockerEndpoint } from './docker-engine.js';

// The two Engine API calls discovery makes (list the containers, follow the
// events), straight over node:http. dockerode would bring gRPC, protobufjs and
// ssh2 along for features discovery never uses: about 8 MiB of the daemon's RSS.

const MAX_JSON_BYTES = 64 * 1024 ** 2;

/** A non-2xx answer, with the engine's own message. */
export class DockerApiError extends Error {
  override readonly name = 'DockerApiError';
  constructor(
    readonly statusCode: number,
    readonly json: { message?: unknown } | undefined,
    body: string,
  ) {
    super(`(HTTP code ${statusCode}) ${typeof json?.message === 'string' ? json.message : body.slice(0, 200)}`);
  }
}

export interface DockerApi {
  /** GET a JSON answer. */
  getJson(path: string, query: Record<string, string>, signal: AbortSignal): Promise<unknown>;
  /** GET a streamed answer (the events); the caller reads it until it ends. */
  getStream(path: string, query: Record<string, string>, signal: AbortSignal): Promise<IncomingMessage>;
  /** Closes idle and open connections. */
  close(): void;
}

export function createDockerApi(endpoint: DockerEndpoint): DockerApi {
  const o = endpoint.options;
  const send = (path: string, query: Record<string, string>, signal: AbortSignal): Promise<IncomingMessage> =>
    new Promise((resolve, reject) => {
      const qs = new URLSearchParams(query).toString();
      const options: RequestOptions = {
        method: 'GET',
        path: qs ? `${path}?${qs}` : path,
        agent: o.agent,
        signal,
        headers: { accept: 'application/json', host: o.socketPath !== undefined ? 'docker' : `${o.host?.includes(':') ? `[${o.host}]` : o.host}:${o.port}` },
        ...(o.socketPath !== undefined ? { socketPath: o.socketPath } : { host: o.host, port: o.port }),
      };
      const req = o.protocol === 'https' ? httpsRequest({ ...options, ca: o.ca, cert: o.cert, key: o.key }) : httpRequest(options);
      req.once('response', resolve);
      req.once('error', reject);
      req.end();
    });

  const readBody = async (res: IncomingMessage): Promise<string> => {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res) {
      size += (chunk as Buffer).length;
      if (size > MAX_JSON_BYTES) {
        res.destroy();
        throw new Error(`the answer is larger than ${MAX_JSON_BYTES / 1024 ** 2} MiB`);
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  };

  const check = async (res: IncomingMessage): Promise<IncomingMessage> => {
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return res;
    const body = await readBody(res).catch(() => '');
    let json: { message?: unknown } | undefined;
    try {
      json = JSON.parse(body) as { message?: unknown };
    } catch {
      json = undefined;
    }
    throw new DockerApiError(status, json, body.trim());
  };

  return {
    async getJson(path, query, signal) {
      const res = await check(await send(path, query, signal));
      const body = await readBody(res);
      try {
        return JSON.parse(body) as unknown;
      } catch {
        throw new Error(`the answer to GET ${path} is not JSON: ${JSON.stringify(body.slice(0, 100))}`);
      }
    },
    async getStream(path, query, signal) {
      return check(await send(path, query, signal));
    },
    close() {
      o.agent.destroy();
    },
  };
}
