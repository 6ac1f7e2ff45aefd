import type { RepositoryEntry } from '../config/index.js';
import { kindOf } from '../config/kind-of.js';
import type { RepositoryCommon, RepositoryContext, TargetSeries } from './descriptor.js';
import { REPOSITORIES, REPOSITORY_KINDS } from './registry.js';
import type { RepositoryConfig, RepositoryKind } from './registry.js';
import type { Repository } from './repository.js';

/** The kind of a config entry: the one key of the registry its block sits under (validation sees there is one). */
export function repositoryKindOf(entry: RepositoryEntry): RepositoryKind {
  const kind = kindOf(REPOSITORY_KINDS, entry)?.kind;
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

/** Why this entry's repository can never take the target's profiles (its kind's refusesTarget), or undefined. */
export function targetRefusalOf(entry: RepositoryEntry, target: TargetSeries): string | undefined {
  return refusalOfKind(repositoryKindOf(entry), entry, target);
}

function refusalOfKind<K extends RepositoryKind>(kind: K, entry: RepositoryEntry, target: TargetSeries): string | undefined {
  return REPOSITORIES[kind].refusesTarget?.(blockOf(entry, kind), target);
}
