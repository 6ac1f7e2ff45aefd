/**
 * Loopback fakes of the OTLP profiles receiver (OTLP/HTTP and OTLP/gRPC)
 * and of Parca's ProfileStoreService, keeping the bytes each request carried
 * so that an independent decoder (otlp-decoder.ts) can read them.
 *
 * gRPC is served from node:http2 by hand, per gRPC's PROTOCOL-HTTP2.md
 * (length-prefixed messages, `grpc-encoding: gzip`, the status in trailers,
 * google.rpc.Status details in `grpc-status-details-bin`), not by the
 * library the adapters use, so a framing mistake on either side shows.
 *
 * What the real servers check, and these fakes too:
 * - OTel Collector receiver/otlpreceiver/otlphttp.go (commit 934999fb):
 *   Content-Type must be application/x-protobuf (or JSON), else 415; a body
 *   that does not read or unmarshal is 400 with a google.rpc.Status body;
 *   a permanent consumer error 400, a transient one 503 with Retry-After
 *   from the RetryInfo; internal/profiles/otlp.go answers gRPC with
 *   InvalidArgument or Unavailable for the same cases.
 * - opentelemetry-proto v1.11.0 profiles.proto: each dictionary table
 *   present with its zero value at index 0, every index in range, a
 *   Sample with at least one value, attribute keys unique per
 *   attribute_indices.
 * - Parca pkg/normalizer/normalizer.go (NormalizeWriteRawRequest, commit
 *   3b5647cd): `__name__` required, label names valid and unique, else
 *   INVALID_ARGUMENT; the profile must gunzip and parse; and
 *   pkg/profilestore/profilecolumnstore.go: `name:type:unit:ptype:punit`
 *   must parse as a metric selector.
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { constants, createSecureServer, createServer as createH2Server } from 'node:http2';
import type { Http2SecureServer, Http2Server, ServerHttp2Stream, IncomingHttpHeaders } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { anyPack } from '@bufbuild/protobuf/wkt';
import { RetryInfoSchema } from '../../src/proto/gen/google/rpc/error_details_pb.js';
import { StatusSchema } from '../../src/proto/gen/google/rpc/status_pb.js';
import {
  ExportProfilesServiceRequestSchema,
  ExportProfilesServiceResponseSchema,
} from '../../src/proto/gen/opentelemetry/proto/collector/profiles/v1development/profiles_service_pb.js';
import type { ExportProfilesServiceRequest } from '../../src/proto/gen/opentelemetry/proto/collector/profiles/v1development/profiles_service_pb.js';
import { WriteRawRequestSchema, WriteRawResponseSchema } from '../../src/proto/gen/parca/profilestore/v1alpha1/profilestore_pb.js';
import { decodePprof } from './pprof-stacks.js';

export const OTLP_GRPC_PATH = '/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export';
export const PARCA_GRPC_PATH = '/parca.profilestore.v1alpha1.ProfileStoreService/WriteRaw';

/** gRPC status codes used here (google.rpc.Code). */
export const GRPC = { OK: 0, INVALID_ARGUMENT: 3, RESOURCE_EXHAUSTED: 8, INTERNAL: 13, UNAVAILABLE: 14 } as const;

/** A failure the fake answers instead of taking the request: an HTTP status, or a gRPC code, each with an optional retry hint. */
export interface Failure {
  readonly http?: number;
  readonly grpc?: number;
  readonly message: string;
  /** Retry-After (HTTP, seconds) / RetryInfo.retry_delay (gRPC). */
  readonly retryAfterS?: number;
}

/** The partial success the next accepted request is answered with. */
export interface Partial {
  readonly rejected: number;
  readonly message: string;
}

export class RequestRefused extends Error {
  constructor(
    readonly httpStatus: number,
    readonly grpcCode: number,
    message: string,
  ) {
    super(message);
  }
}

const bad = (message: string): RequestRefused => new RequestRefused(400, GRPC.INVALID_ARGUMENT, message);

/** The checks of profiles.proto v1.11.0 on a request's dictionary and references. */
export function otlpRequestProblem(req: ExportProfilesServiceRequest): string | undefined {
  const d = req.dictionary;
  if (d === undefined) return req.resourceProfiles.length === 0 ? undefined : 'no dictionary';
  const zero = (name: string, present: boolean, isZero: boolean): string | undefined => (!present ? `${name}[0] missing` : !isZero ? `${name}[0] is not the zero value` : undefined);
  const firsts = [
    zero('string_table', d.stringTable.length > 0, d.stringTable[0] === ''),
    zero('mapping_table', d.mappingTable.length > 0, d.mappingTable[0]?.memoryStart === 0n && d.mappingTable[0].filenameStrindex === 0 && d.mappingTable[0].attributeIndices.length === 0),
    zero('location_table', d.locationTable.length > 0, d.locationTable[0]?.address === 0n && d.locationTable[0].lines.length === 0 && d.locationTable[0].mappingIndex === 0),
    zero('function_table', d.functionTable.length > 0, d.functionTable[0]?.nameStrindex === 0 && d.functionTable[0].filenameStrindex === 0),
    zero('link_table', d.linkTable.length > 0, d.linkTable[0]?.traceId.every((b) => b === 0) === true && d.linkTable[0].spanId.every((b) => b === 0)),
    zero('attribute_table', d.attributeTable.length > 0, d.attributeTable[0]?.keyStrindex === 0 && d.attributeTable[0].value === undefined),
    zero('stack_table', d.stackTable.length > 0, d.stackTable[0]?.locationIndices.length === 0),
  ].find((p) => p !== undefined);
  if (firsts !== undefined) return firsts;
  const inRange = (what: string, i: number, n: number): string | undefined => (i < 0 || i >= n ? `${what} ${i} out of range (${n})` : undefined);
  const str = (i: number): string | undefined => inRange('string index', i, d.stringTable.length);
  const attrs = (what: string, indices: readonly number[]): string | undefined => {
    const keys = new Set<number>();
    for (const i of indices) {
      const p = inRange(`${what} attribute index`, i, d.attributeTable.length);
      if (p !== undefined) return p;
      const key = d.attributeTable[i]!.keyStrindex;
      if (keys.has(key)) return `${what}: attribute key ${d.stringTable[key]} twice (keys MUST be unique)`;
      keys.add(key);
    }
    return undefined;
  };
  for (const a of d.attributeTable) {
    const p = str(a.keyStrindex) ?? str(a.unitStrindex);
    if (p !== undefined) return p;
  }
  for (const m of d.mappingTable) {
    const p = str(m.filenameStrindex) ?? attrs('mapping', m.attributeIndices);
    if (p !== undefined) return p;
  }
  for (const f of d.functionTable) {
    const p = str(f.nameStrindex) ?? str(f.systemNameStrindex) ?? str(f.filenameStrindex);
    if (p !== undefined) return p;
  }
  for (const l of d.locationTable) {
    const p = inRange('mapping index', l.mappingIndex, d.mappingTable.length) ?? l.lines.map((ln) => inRange('function index', ln.functionIndex, d.functionTable.length)).find(Boolean);
    if (p !== undefined) return p;
  }
  for (const s of d.stackTable) {
    const p = s.locationIndices.map((i) => inRange('location index', i, d.locationTable.length)).find(Boolean);
    if (p !== undefined) return p;
  }
  for (const rp of req.resourceProfiles) {
    for (const sp of rp.scopeProfiles) {
      for (const profile of sp.profiles) {
        const st = profile.sampleType;
        const p0 = st === undefined ? 'a profile without sample_type' : (str(st.typeStrindex) ?? str(st.unitStrindex) ?? attrs('profile', profile.attributeIndices));
        if (p0 !== undefined) return p0;
        for (const s of profile.samples) {
          if (s.values.length === 0 && s.timestampsUnixNano.length === 0) return 'a Sample MUST have at least one entry in values or timestamps_unix_nano';
          const p = inRange('stack index', s.stackIndex, d.stackTable.length) ?? inRange('link index', s.linkIndex, d.linkTable.length) ?? attrs('sample', s.attributeIndices);
          if (p !== undefined) return p;
        }
      }
    }
  }
  return undefined;
}

/** Prometheus's legacy label name rule (model.LabelName.IsValid under legacy validation); every name Parca accepts is UTF-8. */
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const METRIC_SELECTOR_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** Parca's checks on a WriteRawRequest (see the file's comment). */
export function parcaRequestProblem(bytes: Uint8Array): string | undefined {
  const req = fromBinary(WriteRawRequestSchema, bytes);
  for (const series of req.series) {
    const names = new Set<string>();
    let name = '';
    for (const l of series.labels?.labels ?? []) {
      if (l.name === '__name__') {
        name = l.value;
        continue;
      }
      if (!LABEL_NAME.test(l.name)) return `invalid label name: ${l.name}`;
      if (names.has(l.name)) return `duplicate label name: ${l.name}`;
      names.add(l.name);
    }
    if (name === '') return 'missing __name__ label';
    for (const sample of series.samples) {
      let profile;
      try {
        profile = decodePprof(sample.rawProfile);
      } catch (err) {
        return `failed to parse profile: ${(err as Error).message}`;
      }
      const s = (i: unknown): string => profile.stringTable.strings[Number(i)] ?? '';
      for (const st of profile.sampleType) {
        const type = `${name}:${s(st.type)}:${s(st.unit)}:${s(profile.periodType?.type)}:${s(profile.periodType?.unit)}`;
        if (!METRIC_SELECTOR_NAME.test(type)) return `invalid profile type (${type})`;
      }
    }
  }
  return undefined;
}

/** What the fake got: the request's bytes (uncompressed) and how it came. */
export interface Received {
  readonly path: string;
  readonly bytes: Buffer;
  readonly headers: IncomingHttpHeaders;
}

/** One fake: OTLP/HTTP, or gRPC for OTLP and Parca, on loopback, plaintext or TLS. */
export class ProfilesFake {
  readonly received: Received[] = [];
  /** Answered in order, one per request, before anything is taken. */
  readonly failures: Failure[] = [];
  partial: Partial | undefined;
  /** Keep each request unanswered (an abort test); `abandoned` counts those whose client went away. */
  hold = false;
  held = 0;
  abandoned = 0;
  /** Requests refused by the checks, with why. */
  readonly refused: string[] = [];
  #server: Server | Http2Server | Http2SecureServer;
  readonly #sockets = new Set<Socket>();

  constructor(
    readonly protocol: 'http' | 'grpc',
    tls?: { readonly key: Buffer; readonly cert: Buffer },
  ) {
    if (protocol === 'http') {
      const handler = (req: IncomingMessage, res: ServerResponse): void => void this.#http(req, res);
      this.#server = tls ? createHttpsServer({ ...tls }, handler) : createHttpServer(handler);
    } else {
      const server = tls ? createSecureServer({ ...tls, allowHTTP1: false }) : createH2Server();
      server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void this.#grpc(stream, headers));
      this.#server = server;
    }
    this.#server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return (this.#server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /** What a request to `path` gets: throws RequestRefused, or answers the response bytes. */
  #take(path: string, bytes: Buffer, headers: IncomingHttpHeaders): Buffer {
    const failure = this.failures.shift();
    if (failure !== undefined) throw Object.assign(new RequestRefused(failure.http ?? 503, failure.grpc ?? GRPC.UNAVAILABLE, failure.message), { retryAfterS: failure.retryAfterS });
    let problem: string | undefined;
    if (path === PARCA_GRPC_PATH) problem = parcaRequestProblem(bytes);
    else {
      let req;
      try {
        req = fromBinary(ExportProfilesServiceRequestSchema, bytes);
      } catch (err) {
        throw bad(`proto: cannot parse invalid wire-format data: ${(err as Error).message}`);
      }
      problem = otlpRequestProblem(req);
    }
    if (problem !== undefined) {
      this.refused.push(problem);
      throw bad(problem);
    }
    this.received.push({ path, bytes, headers });
    if (path === PARCA_GRPC_PATH) return Buffer.from(toBinary(WriteRawResponseSchema, create(WriteRawResponseSchema)));
    const partial = this.partial;
    this.partial = undefined;
    return Buffer.from(
      toBinary(
        ExportProfilesServiceResponseSchema,
        create(ExportProfilesServiceResponseSchema, partial ? { partialSuccess: { rejectedProfiles: BigInt(partial.rejected), errorMessage: partial.message } } : {}),
      ),
    );
  }

  async #http(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (this.hold) {
      this.held++;
      res.on('close', () => this.abandoned++);
      return;
    }
    const status = (code: number, message: string, retryAfterS?: number): void => {
      const body = Buffer.from(toBinary(StatusSchema, create(StatusSchema, { code: code === 400 ? GRPC.INVALID_ARGUMENT : GRPC.UNAVAILABLE, message })));
      res.writeHead(code, { 'content-type': 'application/x-protobuf', ...(retryAfterS !== undefined ? { 'retry-after': String(retryAfterS) } : {}) });
      res.end(body);
    };
    if (req.method !== 'POST' || req.url !== '/v1development/profiles') return status(404, `${req.method} ${req.url}: not found`);
    if (req.headers['content-type'] !== 'application/x-protobuf') {
      res.writeHead(415, { 'content-type': 'text/plain' });
      return void res.end(`415 unsupported media type, supported: [application/json, application/x-protobuf]`);
    }
    let bytes = Buffer.concat(chunks);
    if (req.headers['content-encoding'] === 'gzip') {
      try {
        bytes = gunzipSync(bytes);
      } catch (err) {
        return status(400, `gzip: ${(err as Error).message}`);
      }
    }
    try {
      const answer = this.#take('/v1development/profiles', bytes, req.headers);
      res.writeHead(200, { 'content-type': 'application/x-protobuf' });
      res.end(answer);
    } catch (err) {
      if (!(err instanceof RequestRefused)) throw err;
      status(err.httpStatus, err.message, (err as RequestRefused & { retryAfterS?: number }).retryAfterS);
    }
  }

  async #grpc(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    if (this.hold) {
      this.held++;
      stream.on('close', () => this.abandoned++);
      return;
    }
    const path = String(headers[constants.HTTP2_HEADER_PATH]);
    const trailersOnly = (code: number, message: string, retryAfterS?: number): void => {
      const details = retryAfterS === undefined ? [] : [anyPack(RetryInfoSchema, create(RetryInfoSchema, { retryDelay: { seconds: BigInt(retryAfterS), nanos: 0 } }))];
      const status = create(StatusSchema, { code, message, details });
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-status': String(code),
          'grpc-message': encodeURIComponent(message),
          'grpc-status-details-bin': Buffer.from(toBinary(StatusSchema, status)).toString('base64').replace(/=+$/, ''),
        },
        { endStream: true },
      );
    };
    if (!String(headers['content-type']).startsWith('application/grpc')) {
      stream.respond({ ':status': 415 }, { endStream: true });
      return;
    }
    if (path !== OTLP_GRPC_PATH && path !== PARCA_GRPC_PATH) return trailersOnly(12, `unknown method ${path}`);
    const body = Buffer.concat(chunks);
    if (body.length < 5) return trailersOnly(GRPC.INTERNAL, 'no message');
    const compressed = body[0] === 1;
    const length = body.readUInt32BE(1);
    let bytes = body.subarray(5, 5 + length);
    if (bytes.length !== length) return trailersOnly(GRPC.INTERNAL, 'truncated message');
    if (compressed) {
      if (headers['grpc-encoding'] !== 'gzip') return trailersOnly(12, `compressed with ${String(headers['grpc-encoding'])}`);
      bytes = gunzipSync(bytes);
    }
    let answer: Buffer;
    try {
      answer = this.#take(path, Buffer.from(bytes), headers);
    } catch (err) {
      if (!(err instanceof RequestRefused)) throw err;
      return trailersOnly(err.grpcCode, err.message, (err as RequestRefused & { retryAfterS?: number }).retryAfterS);
    }
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(answer.length, 1);
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(Buffer.concat([prefix, answer]));
  }
}


