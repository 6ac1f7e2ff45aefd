import type { ProfileLimits, RepositoryEntry, RepositoryKind } from '../config/index.js';
import { REPOSITORY_KINDS } from '../config/index.js';
import { createDirectoryRepository } from './directory.js';
import { createProfefeRepository } from './profefe.js';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import { createPyroscopeRepository } from './pyroscope.js';
import type { QueueSettings } from './queue.js';
import type { Repository } from './repository.js';
import { createS3Repository } from './s3.js';

/** The repository kind of a config entry and its settings. */
export function repositoryKindOf(entry: RepositoryEntry): RepositoryKind {
  const kind = REPOSITORY_KINDS.find((k) => entry[k] !== undefined);
  if (!kind) throw new Error('repository entry without a kind');
  return kind;
}

/** The settings every repository kind has: queue bounds, retry backoff, send timeout. */
export function repositoryCommonOf(entry: RepositoryEntry): { queue: { max_size: number; max_age: number }; retry: { initial_backoff: number; max_backoff: number }; timeout: number } {
  const block = entry[repositoryKindOf(entry)];
  if (!block) throw new Error('repository entry without settings');
  return { queue: block.queue, retry: block.retry, timeout: block.timeout };
}

/** `name:` or, by default, the kind. */
export function repositoryNameOf(entry: RepositoryEntry): string {
  const kind = repositoryKindOf(entry);
  return entry[kind]?.name ?? kind;
}

export class UnsupportedError extends Error {
  override readonly name = 'UnsupportedError';
}

/** What some repositories use besides their settings. */
export interface RepositoryContext {
  readonly logger?: Logger | undefined;
  readonly metrics?: Metrics | undefined;
  /** The repository of the same name this one replaces on a reload (Pyroscope keeps its delta baselines). */
  readonly previous?: Repository | undefined;
  /** The structure limits of the config in force, for repositories that decode profiles (queued ones too). */
  readonly profileLimits?: (() => ProfileLimits) | undefined;
}

export async function createRepository(entry: RepositoryEntry, context: RepositoryContext = {}): Promise<Repository> {
  const name = repositoryNameOf(entry);
  if (entry.profefe) return createProfefeRepository(name, entry.profefe);
  if (entry.directory) return createDirectoryRepository(name, entry.directory);
  if (entry.pyroscope) return createPyroscopeRepository(name, entry.pyroscope, context);
  if (entry.s3) return createS3Repository(name, entry.s3, context);
  throw new UnsupportedError(`repository ${JSON.stringify(name)}: ${repositoryKindOf(entry)} is not yet supported by this version`);
}

/** Sends in flight per repository while it answers. */
const QUEUE_PARALLELISM = 32;

/** The queue settings of a config entry. */
export function queueSettingsOf(entry: RepositoryEntry): QueueSettings {
  const common = repositoryCommonOf(entry);
  return {
    maxBytes: common.queue.max_size,
    maxAgeMs: common.queue.max_age,
    policy: { initialMs: common.retry.initial_backoff, maxMs: common.retry.max_backoff },
    timeoutMs: common.timeout,
    parallelism: QUEUE_PARALLELISM,
  };
}
