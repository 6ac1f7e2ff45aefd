import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { createClient } from '@connectrpc/connect';
import type { Logger } from 'pino';
import { request } from 'undici';
import { DEFAULT_PROFILE_LIMITS, formatSize } from '../config/index.js';
import type { ProfileLimits } from '../config/index.js';
import { createTargetClient, readBodyUpTo } from '../http/index.js';
import { decodeProfile } from '../profiles/decode.js';
import type { Deltas } from '../profiles/delta.js';
import { isTrace } from '../profiles/profile.js';
import type { ScrapedProfile } from '../profiles/profile.js';
import { StatusSchema } from '../proto/gen/google/rpc/status_pb.js';
import {
  ExportProfilesServiceRequestSchema,
  ExportProfilesServiceResponseSchema,
  ProfilesService,
} from '../proto/gen/opentelemetry/proto/collector/profiles/v1development/profiles_service_pb.js';
import type { ExportProfilesServiceRequest, ExportProfilesServiceResponse } from '../proto/gen/opentelemetry/proto/collector/profiles/v1development/profiles_service_pb.js';
import { redactUrl } from '../redact.js';
import { Code, openGrpcChannel, resultOfGrpcError } from './grpc.js';
import type { CodeRule } from './grpc.js';
import { parseRetryAfter, resultOfError } from './http-result.js';
import type { OtlpConfig } from './kinds/otlp.js';
import { toExportRequest } from './otlp-convert.js';
import type { OtlpScope } from './otlp-convert.js';
import type { Prepared, Repository, SendResult } from './repository.js';
import { deltaStage } from './delta-stage.js';
import type { DeltaRepositoryDeps } from './delta-stage.js';
import { traceSkipper } from './trace-skip.js';

// An OTLP profiles receiver (signal v1development, opentelemetry-proto
// v1.11.0): each scraped pprof profile becomes one
// ExportProfilesServiceRequest (otlp-convert.ts), sent as http/protobuf
// (POST {endpoint}/v1development/profiles) or grpc (ProfilesService/Export).
// Retries follow the OTLP specification (docs/specification.md of
// opentelemetry-proto v1.11.0): HTTP 429, 502, 503, 504 are retried after
// their Retry-After, every other 4xx/5xx is permanent; gRPC codes by the
// table there (RESOURCE_EXHAUSTED only with a RetryInfo); a partial success
// is never retried. Cumulative types go as deltas (the same delta stage as
// Pyroscope's, baselines under state_dir) unless `cumulative: as_scraped`.

export const HTTP_PATH = '/v1development/profiles';

/** OTLP/HTTP "Retryable Response Codes": all other 4xx and 5xx MUST NOT be retried. */
const RETRYABLE_HTTP = new Set([429, 502, 503, 504]);

/** The answer body read at most (the spec's recommended 4 MiB response limit). */
const MAX_RESPONSE_BYTES = 4 * 1024 ** 2;

/** OTLP/gRPC: the codes the specification's table marks retryable; RESOURCE_EXHAUSTED only when the server says when (RetryInfo). */
const RETRYABLE_GRPC: ReadonlySet<Code> = new Set([Code.Canceled, Code.DeadlineExceeded, Code.Aborted, Code.OutOfRange, Code.Unavailable, Code.DataLoss]);
export const otlpGrpcRule: CodeRule = (code, delay) => (RETRYABLE_GRPC.has(code) || (code === Code.ResourceExhausted && delay !== undefined) ? 'retryable' : 'permanent');

const TRACES = {
  warning: 'OTLP profiles cannot hold Go execution traces: this repository skips every trace; said once',
  reason: 'a Go execution trace: OTLP profiles hold pprof-style samples only (traces go to profefe, directory and s3)',
};


export interface OtlpDeps extends DeltaRepositoryDeps {
  readonly logger?: Logger | undefined;
}

export interface OtlpRepository extends Repository {
  prepare(profile: ScrapedProfile): Promise<Prepared>;
  readonly deltas: Deltas;
}

function scopeOf(): OtlpScope {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
  return { name: pkg.name, version: pkg.version };
}

/** What a successful answer says: nothing, a warning, or that part of the request was rejected. */
export function resultOfResponse(response: ExportProfilesServiceResponse, sent: number): { result: SendResult; warning?: string } {
  const partial = response.partialSuccess;
  if (partial === undefined) return { result: { status: 'ok' } };
  const rejected = Number(partial.rejectedProfiles);
  if (rejected > 0) {
    // "The client MUST NOT retry the request when it receives a partial success response"
    return { result: { status: 'permanent', error: `partial success: the receiver rejected ${rejected} of ${sent} profiles: ${partial.errorMessage || '(no message)'}` } };
  }
  return partial.errorMessage === '' ? { result: { status: 'ok' } } : { result: { status: 'ok' }, warning: partial.errorMessage };
}

/** The message of an OTLP/HTTP error body (a google.rpc.Status), or the text of a proxy's page. */
function errorText(body: Buffer, contentType: string | undefined): string {
  if (contentType?.includes('protobuf') === true) {
    try {
      const status = fromBinary(StatusSchema, body);
      return status.message;
    } catch {
      // not the Status it claims to be: show the bytes as text
    }
  }
  return body.toString('utf8').trim().replace(/\s+/g, ' ').slice(0, 300);
}

export async function createOtlpRepository(name: string, config: OtlpConfig, deps: OtlpDeps = {}): Promise<OtlpRepository> {
  const { logger } = deps;
  const limits = (): ProfileLimits => deps.profileLimits?.() ?? DEFAULT_PROFILE_LIMITS;
  const stage = deltaStage(name, config.queue.max_age, deps);
  const { deltas } = stage;
  const scope = scopeOf();
  const gzip = config.compression === 'gzip';
  const base = config.endpoint.replace(/\/+$/, '');
  let warnedAt = -Infinity;

  const send = config.protocol === 'grpc' ? await grpcSender(base, config, gzip) : await httpSender(base, config, gzip);

  const skipTrace = traceSkipper(name, logger, TRACES);

  return {
    name,
    kind: 'otlp',
    deltas,

    async prepare(profile: ScrapedProfile): Promise<Prepared> {
      if (isTrace(profile)) return skipTrace(profile);
      if (config.cumulative === 'as_scraped' || profile.delta === true) return { status: 'send', profile };
      return stage.prepare(profile);
    },

    async send(profile: ScrapedProfile, signal: AbortSignal): Promise<SendResult> {
      if (isTrace(profile)) return skipTrace(profile);
      let body: Uint8Array;
      let req: ExportProfilesServiceRequest;
      let count: number;
      try {
        const { profile: pprof } = decodeProfile(profile.data, limits());
        req = toExportRequest(pprof, profile, scope);
        count = req.resourceProfiles[0]?.scopeProfiles[0]?.profiles.length ?? 0;
        body = toBinary(ExportProfilesServiceRequestSchema, req);
      } catch (err) {
        return { status: 'permanent', error: `not a pprof profile: ${(err as Error).message}` };
      }
      if (body.length > config.max_request_size) {
        return {
          status: 'permanent',
          error: `not sent: the OTLP request is ${formatSize(body.length)} and max_request_size is ${formatSize(config.max_request_size)} (raise it here and on the receiver if it takes more)`,
        };
      }
      const outcome = await send({ req, body }, count, signal);
      if ('warning' in outcome && outcome.warning !== undefined) {
        const now = Date.now();
        if (now - warnedAt >= 60_000) {
          warnedAt = now;
          logger?.warn({ repository: name, target: profile.targetId, type: profile.type }, `the OTLP receiver accepted the profile with a warning: ${outcome.warning}`);
        }
      }
      return outcome.result;
    },

    close: () => send.close(),
  };
}

/** A request, and its encoding (for HTTP; gRPC's transport encodes it itself). */
interface Encoded {
  readonly req: ExportProfilesServiceRequest;
  readonly body: Uint8Array;
}

type Sender = ((request: Encoded, count: number, signal: AbortSignal) => Promise<{ result: SendResult; warning?: string }>) & { close(): Promise<void> };

async function httpSender(base: string, config: OtlpConfig, gzip: boolean): Promise<Sender> {
  const client = await createTargetClient(config);
  const url = `${base}${HTTP_PATH}`;
  const headers: Record<string, string> = {
    ...config.headers,
    'content-type': 'application/x-protobuf',
    ...(gzip ? { 'content-encoding': 'gzip' } : {}),
    ...client.headers,
  };
  const sender = async ({ body }: Encoded, count: number, signal: AbortSignal): Promise<{ result: SendResult; warning?: string }> => {
    try {
      const res = await request(url, { method: 'POST', body: gzip ? gzipSync(body) : body, headers, dispatcher: client.dispatcher, signal });
      const read = await readBodyUpTo(res.body, MAX_RESPONSE_BYTES);
      // the spec: a response past the limit is a non-retryable error
      if ('over' in read) return { result: { status: 'permanent', error: `POST ${redactUrl(url)}: HTTP ${res.statusCode}: the answer is larger than ${formatSize(MAX_RESPONSE_BYTES)}` } };
      const answer = read.bytes;
      const contentType = [res.headers['content-type']].flat()[0];
      if (res.statusCode >= 200 && res.statusCode < 300) {
        if (answer.length === 0 || contentType?.includes('protobuf') !== true) return { result: { status: 'ok' } };
        let response: ExportProfilesServiceResponse;
        try {
          response = fromBinary(ExportProfilesServiceResponseSchema, answer);
        } catch {
          return { result: { status: 'ok' } };
        }
        return resultOfResponse(response, count);
      }
      const text = errorText(answer, contentType);
      const detail = redactUrl(`POST ${url}: HTTP ${res.statusCode}${text ? `: ${text}` : ''}`);
      if (!RETRYABLE_HTTP.has(res.statusCode)) return { result: { status: 'permanent', error: detail } };
      return { result: { status: 'retryable', error: detail, retryAfterMs: parseRetryAfter([res.headers['retry-after']].flat()[0]) } };
    } catch (err) {
      return { result: resultOfError(err, `POST ${url}`) };
    }
  };
  return Object.assign(sender, { close: () => client.close() });
}

async function grpcSender(base: string, config: OtlpConfig, gzip: boolean): Promise<Sender> {
  const channel = await openGrpcChannel({ baseUrl: base, client: config, headers: config.headers, gzip });
  const client = createClient(ProfilesService, channel.transport);
  const what = `gRPC ${redactUrl(base)} ProfilesService/Export`;
  const sender = async ({ req }: Encoded, count: number, signal: AbortSignal): Promise<{ result: SendResult; warning?: string }> => {
    try {
      const response = await client.export(req, { signal });
      return resultOfResponse(response, count);
    } catch (err) {
      return { result: resultOfGrpcError(err, what, otlpGrpcRule, signal) };
    }
  };
  return Object.assign(sender, { close: async () => channel.close() });
}
