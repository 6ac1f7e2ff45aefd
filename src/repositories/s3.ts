import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { fileExtensionOf } from '../profiles/profile.js';
import type { ScrapedProfile } from '../profiles/profile.js';
import { redactUrl } from '../redact.js';
import { fileTime, safeName } from './directory.js';
import { parseRetryAfter, resultOfStatus } from './http-result.js';
import type { S3Config } from './kinds/s3.js';
import type { Repository, SendResult } from './repository.js';

// S3 (or any S3-compatible store) through @aws-sdk/client-s3, loaded only
// when an s3 repository is configured. Credentials come from the AWS chain
// (environment, shared config/profile, web identity, ECS/EC2 roles).
//
// Each profile is one object, byte for byte what the target served, so
// `go tool pprof` (a trace: `go tool trace`) opens a downloaded object as it
// is. The body is a Buffer and checksums are computed only when S3 requires
// them: with a stream body the SDK would frame it as aws-chunked, which some
// S3-compatible stores keep verbatim in the object.

/** S3's limit for user-defined metadata (keys and values, in bytes). */
const MAX_METADATA_BYTES = 2048;

/** Error codes S3 answers with a 4xx that are still worth another try. */
const RETRYABLE_CODES = new Set(['RequestTimeout', 'RequestTimeTooSkewed', 'ExpiredToken', 'TokenRefreshRequired', 'SlowDown', 'Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'TooManyRequestsException']);

export interface S3Deps {
  readonly logger?: Logger | undefined;
}

/**
 * `{prefix}{service}/{type}/{yyyy}/{mm}/{dd}/{time}_{instance}_{digest}.pb.gz`
 * (a Go execution trace: `.trace`), in UTC. A PUT replaces whatever object
 * has its key, so the key ends in a digest of the target, type and bytes: two
 * profiles with one time get two objects, while a retry of the same profile
 * lands on the same one.
 */
export function s3Key(prefix: string, profile: ScrapedProfile): string {
  const d = new Date(profile.time);
  const yyyy = String(d.getUTCFullYear());
  const mm = String(d.getUTCMonth() + 1).padStart(2, '0');
  const dd = String(d.getUTCDate()).padStart(2, '0');
  const instance = profile.labels['instance'] ?? profile.targetId;
  const digest = createHash('sha256').update(`${profile.targetId}\0${profile.type}\0`).update(profile.data).digest('hex').slice(0, 12);
  return `${prefix}${safeName(profile.service)}/${safeName(profile.type)}/${yyyy}/${mm}/${dd}/${fileTime(profile.time)}_${safeName(instance)}_${digest}${fileExtensionOf(profile)}`;
}

/** A metadata value as HTTP carries it: printable ASCII stays, anything else (and `%`) is percent-encoded. */
export function metadataValue(value: string): string {
  return /^[\x20-\x24\x26-\x7e]*$/.test(value) ? value : encodeURIComponent(value);
}

/**
 * The object's metadata: `pprof-service`, `pprof-type`, `pprof-time`,
 * `pprof-target-id`, `pprof-url`, and each label under its name in lower case
 * (S3 lower-cases metadata names). Two labels that differ only in case keep
 * both values: the later in name order gets `_2`, `_3`, … When it all exceeds
 * S3's 2 KiB, the labels go to a sidecar object instead (`labels` in the
 * result) and `pprof-labels` names it.
 */
export function s3Metadata(profile: ScrapedProfile, sidecarKey: string, onRename?: (from: string, to: string) => void): { metadata: Record<string, string>; labels?: Record<string, string> } {
  const own: Record<string, string> = {
    'pprof-service': metadataValue(profile.service),
    'pprof-type': metadataValue(profile.type),
    'pprof-time': new Date(profile.time).toISOString(),
    'pprof-target-id': metadataValue(profile.targetId),
    'pprof-url': metadataValue(profile.url),
  };
  const labels: Record<string, string> = {};
  for (const key of Object.keys(profile.labels).sort()) {
    let name = key.toLowerCase();
    if (name in labels) {
      let i = 2;
      while (`${name}_${i}` in labels) i++;
      name = `${name}_${i}`;
    }
    if (name !== key) onRename?.(key, name);
    labels[name] = metadataValue(profile.labels[key] ?? '');
  }
  const all = { ...own, ...labels };
  const size = Object.entries(all).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
  if (size <= MAX_METADATA_BYTES) return { metadata: all };
  return { metadata: { ...own, 'pprof-labels': metadataValue(sidecarKey) }, labels: { ...profile.labels } };
}

/** An SDK error as a send result: throttling, 5xx, timeouts and network errors are retried; other 4xx are permanent. */
export function resultOfS3Error(err: unknown, what: string): SendResult {
  const e = err as { name?: string; Code?: string; message?: string; $metadata?: { httpStatusCode?: number }; $response?: { headers?: Record<string, string | undefined> } };
  const code = e.Code ?? e.name ?? 'Error';
  const detail = redactUrl(`${code}: ${e.message ?? String(err)}`);
  const status = e.$metadata?.httpStatusCode;
  if (status === undefined || code === 'AbortError' || code === 'TimeoutError') return { status: 'retryable', error: `${what}: ${detail}` };
  const retryAfter = e.$response?.headers?.['retry-after'];
  // SlowDown and the like: retried by name whatever the status, and their wait honoured like any other
  if (RETRYABLE_CODES.has(code)) return { status: 'retryable', error: `${what}: HTTP ${status} ${detail}`, retryAfterMs: parseRetryAfter(retryAfter) };
  const result = resultOfStatus(status, detail, retryAfter);
  if (result.status === 'retryable') return { ...result, error: `${what}: ${result.error}` };
  if (result.status === 'permanent') return { status: 'permanent', error: `${what}: ${result.error}` };
  return { status: 'retryable', error: `${what}: ${detail}` };
}

export async function createS3Repository(name: string, config: S3Config, deps: S3Deps = {}): Promise<Repository> {
  const { S3Client, PutObjectCommand } = await import('@aws-sdk/client-s3');
  const client = new S3Client({
    ...(config.region !== undefined ? { region: config.region } : config.endpoint !== undefined && process.env['AWS_REGION'] === undefined && process.env['AWS_DEFAULT_REGION'] === undefined ? { region: 'us-east-1' } : {}),
    ...(config.endpoint !== undefined ? { endpoint: config.endpoint } : {}),
    forcePathStyle: config.force_path_style,
    // the queue retries, with its own backoff: one attempt per send here
    maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const renamed = new Set<string>();
  const onRename = (from: string, to: string): void => {
    if (from.toLowerCase() === to || renamed.has(from)) return;
    renamed.add(from);
    deps.logger?.warn({ repository: name, label: from, sent_as: to }, 'label stored under another metadata name (S3 lower-cases names, and another label already has this one)');
  };
  const where = `s3://${config.bucket}/${config.prefix}`;

  return {
    name,
    kind: 's3',
    async send(profile: ScrapedProfile, signal: AbortSignal): Promise<SendResult> {
      const key = s3Key(config.prefix, profile);
      const sidecar = `${key.slice(0, -fileExtensionOf(profile).length)}.labels.json`;
      const { metadata, labels } = s3Metadata(profile, sidecar, onRename);
      try {
        if (labels) {
          await client.send(
            new PutObjectCommand({ Bucket: config.bucket, Key: sidecar, Body: Buffer.from(JSON.stringify({ service: profile.service, type: profile.type, labels }, null, 2)), ContentType: 'application/json' }),
            { abortSignal: signal },
          );
        }
        await client.send(
          new PutObjectCommand({
            Bucket: config.bucket,
            Key: key,
            Body: profile.data,
            ContentLength: profile.data.length,
            ContentType: 'application/octet-stream',
            Metadata: metadata,
            ...(config.storage_class !== undefined ? { StorageClass: config.storage_class as never } : {}),
          }),
          { abortSignal: signal },
        );
        return { status: 'ok' };
      } catch (err) {
        return resultOfS3Error(err, `PUT ${where}`);
      }
    },
    async close(): Promise<void> {
      client.destroy();
    },
  };
}
