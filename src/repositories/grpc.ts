import type { SecureClientSessionOptions } from 'node:http2';
import { Code, ConnectError } from '@connectrpc/connect';
import type { Interceptor, Transport } from '@connectrpc/connect';
import { compressionGzip, createGrpcTransport, Http2SessionManager } from '@connectrpc/connect-node';
import type { ClientSettings } from '../config/fields.js';
import { authHeaders, tlsOptions } from '../http/index.js';
import { RetryInfoSchema } from '../proto/gen/google/rpc/error_details_pb.js';
import { redactUrl } from '../redact.js';
import type { SendResult } from './repository.js';

// gRPC for the repositories that speak it (OTLP's grpc protocol, Parca),
// through connect-node over HTTP/2: `http://` is plaintext (h2c, as gRPC
// clients treat an http URL), `https://` TLS with the block's `tls:` keys.
// Only the adapters of such repositories import this module.

/** What the answers of a gRPC peer may hold at most: OTLP's recommended 4 MiB (docs/specification.md, OTLP/gRPC Response). */
const READ_MAX_BYTES = 4 * 1024 ** 2;

const MAX_RETRY_DELAY_MS = 10 * 60_000;

export interface GrpcChannel {
  readonly transport: Transport;
  /** Closes its HTTP/2 session. Idempotent. */
  close(): void;
}

export interface GrpcChannelOptions {
  readonly baseUrl: string;
  readonly client: ClientSettings;
  /** Metadata on every call (the block's `headers`; its credentials are added from `client`). */
  readonly headers?: Readonly<Record<string, string>> | undefined;
  readonly gzip: boolean;
}

/** One HTTP/2 session to `baseUrl`, reopened as needed, with the block's TLS and credentials (the same as an HTTP repository's). */
export async function openGrpcChannel(options: GrpcChannelOptions): Promise<GrpcChannel> {
  const nodeOptions: SecureClientSessionOptions = await tlsOptions(options.client.tls);
  const sessions = new Http2SessionManager(options.baseUrl, { idleConnectionTimeoutMs: 60_000, connectTimeoutMs: 10_000 }, nodeOptions);
  const headers = Object.entries({ ...options.headers, ...(await authHeaders(options.client)) });
  const withHeaders: Interceptor = (next) => async (req) => {
    for (const [name, value] of headers) req.header.set(name, value);
    return next(req);
  };
  const transport = createGrpcTransport({
    baseUrl: options.baseUrl,
    sessionManager: sessions,
    interceptors: [withHeaders],
    readMaxBytes: READ_MAX_BYTES,
    ...(options.gzip ? { sendCompression: compressionGzip } : {}),
    acceptCompression: [compressionGzip],
  });
  let closed = false;
  return {
    transport,
    close() {
      if (closed) return;
      closed = true;
      sessions.abort();
    },
  };
}

/** The RetryInfo delay a gRPC error carries (google.rpc.RetryInfo in grpc-status-details-bin), in ms; undefined when none. */
export function retryDelayOf(err: ConnectError): number | undefined {
  for (const info of err.findDetails(RetryInfoSchema)) {
    const delay = info.retryDelay;
    if (delay === undefined) continue;
    const ms = Number(delay.seconds) * 1000 + Math.floor(delay.nanos / 1e6);
    if (ms > 0) return Math.min(ms, MAX_RETRY_DELAY_MS);
  }
  return undefined;
}

/** How a repository classifies the gRPC codes it may get back. */
export type CodeRule = (code: Code, retryDelayMs: number | undefined) => 'retryable' | 'permanent';

/**
 * The outcome of a gRPC call that threw: retryable or permanent by `rule`
 * (with the RetryInfo delay when the peer gave one); a call that never
 * got the peer's answer (refused, reset, TLS, our own abort) is retryable:
 * connect-node reports those with the socket's error as cause.
 */
export function resultOfGrpcError(err: unknown, what: string, rule: CodeRule, signal?: AbortSignal): SendResult {
  const e = ConnectError.from(err);
  const cause = e.cause as NodeJS.ErrnoException | undefined;
  const code = Code[e.code] ?? String(e.code);
  const detail = redactUrl(`${what}: gRPC ${code}${cause?.code !== undefined ? ` (${cause.code})` : ''}: ${e.rawMessage}`);
  // our own abort (shutdown, the send's timeout) is not the peer's answer
  if (signal?.aborted === true) return { status: 'retryable', error: detail };
  // a socket, TLS or HTTP/2 failure on the way (connect-node keeps it as the cause) is not the peer's answer either: like
  // every network failure (http-result.ts resultOfError), retried whatever code it was reported under
  if (cause instanceof Error) return { status: 'retryable', error: detail };
  const delay = retryDelayOf(e);
  if (rule(e.code, delay) === 'permanent') return { status: 'permanent', error: detail };
  return { status: 'retryable', error: detail, retryAfterMs: delay };
}

export { Code, ConnectError };
