import type { RepositoryEntry } from '../config/index.js';
import type { RepositoryCommon, RepositoryContext } from './descriptor.js';
import type { QueueSettings } from './queue.js';
import { REPOSITORIES, REPOSITORY_KINDS } from './registry.js';
import type { RepositoryConfig, RepositoryKind } from './registry.js';
import type { Repository } from './repository.js';

/** The kind of a config entry: the one key of the registry its block sits under (validation sees there is one). */
export function repositoryKindOf(entry: RepositoryEntry): RepositoryKind {
  const kind = REPOSITORY_KINDS.find((k) => entry[k] !== undefined);
  if (kind === undefined) throw new Error('repository entry without a kind');
  return kind;
}

/** The block of an entry of this kind. */
function blockOf<K extends RepositoryKind>(entry: RepositoryEntry, kind: K): RepositoryConfig<K> {
  const block = entry[kind] as RepositoryConfig<K> | undefined;
  if (block === undefined) throw new Error(`repository entry without a ${kind} block`);
  return block;
}

/** The settings every repository kind has: queue bounds, retry backoff, send timeout. */
export function repositoryCommonOf(entry: RepositoryEntry): Pick<RepositoryCommon, 'queue' | 'retry' | 'timeout'> {
  const { queue, retry, timeout } = blockOf(entry, repositoryKindOf(entry));
  return { queue, retry, timeout };
}

/** `name:` or, by default, the kind. */
export function repositoryNameOf(entry: RepositoryEntry): string {
  const kind = repositoryKindOf(entry);
  return blockOf(entry, kind).name ?? kind;
}

export async function createRepository(entry: RepositoryEntry, context: RepositoryContext = {}): Promise<Repository> {
  return createOfKind(repositoryKindOf(entry), entry, context);
}

function createOfKind<K extends RepositoryKind>(kind: K, entry: RepositoryEntry, context: RepositoryContext): Promise<Repository> {
  return REPOSITORIES[kind].create(repositoryNameOf(entry), blockOf(entry, kind), context);
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
