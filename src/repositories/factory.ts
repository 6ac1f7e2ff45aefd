import type { RepositoryEntry, RepositoryKind } from '../config/index.js';
import { REPOSITORY_KINDS } from '../config/index.js';
import { createDirectoryRepository } from './directory.js';
import { createProfefeRepository } from './profefe.js';
import type { Repository } from './repository.js';

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

export async function createRepository(entry: RepositoryEntry): Promise<Repository> {
  const name = repositoryNameOf(entry);
  if (entry.profefe) return createProfefeRepository(name, entry.profefe);
  if (entry.directory) return createDirectoryRepository(name, entry.directory);
  throw new UnsupportedError(`repository ${JSON.stringify(name)}: ${repositoryKindOf(entry)} is not yet supported by this version`);
}
