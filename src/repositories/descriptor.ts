import type { Logger } from 'pino';
import { z } from 'zod';
import { positiveDuration, quote, size } from '../config/fields.js';
import type { SchemaContext } from '../config/fields.js';
import type { AddIssue, RawMap } from '../config/issues.js';
import type { ProfileLimits } from '../config/profile-limits.js';
import type { Metrics } from '../metrics.js';
import type { Deltas } from '../profiles/delta.js';
import type { Labels } from '../profiles/profile.js';
import type { Repository } from './repository.js';

/** What some repositories use besides their settings. */
export interface RepositoryContext {
  readonly logger?: Logger | undefined;
  readonly metrics?: Metrics | undefined;
  /** The repository of the same name this one replaces on a reload (Pyroscope keeps its delta baselines). */
  readonly previous?: Repository | undefined;
  /**
   * The baselines of a delta stage (Pyroscope's), kept for this repository
   * in state_dir/baselines/<name>/ (src/delivery/baselines.ts); baselines not
   * written for `idleMs` go. Without it (tests, tools) they are kept in memory.
   */
  readonly deltaBaselines?: ((options: { readonly idleMs: number }) => Deltas) | undefined;
  /** The structure limits of the config in force, for repositories that decode profiles (queued ones too). */
  readonly profileLimits?: (() => ProfileLimits) | undefined;
}

/**
 * One repository kind, whole: the block its `repositories:` entries hold and
 * how to build its adapter. The config schema, its JSON Schema, validation
 * and the factory all read the registry of these (registry.ts).
 */
export interface RepositoryDescriptor<K extends string = string, S extends z.ZodType = z.ZodType> {
  /** The key of its entries under `repositories:`, and the kind of what it builds. */
  readonly kind: K;
  /** How messages name the kind: "Pyroscope repository eu: …". */
  readonly title: string;
  /** Its block with every default: repositoryFields spread into it give name, queue, retry and timeout. */
  schema(ctx: SchemaContext): S;
  /** Checks across its fields, on the block as the YAML holds it (paths relative to the block), so they run even where other parts of the file do not parse. */
  validate?(block: RawMap, add: AddIssue): void;
  /**
   * Builds the adapter. It imports the adapter's module (and so any SDK it
   * loads) only now: the config schema reads this descriptor, the adapters
   * read the config, and a kind nobody configures loads nothing heavy.
   */
  create(name: string, config: z.output<S>, context: RepositoryContext): Promise<Repository>;
  /**
   * Why a repository of this kind can never take a target's profiles,
   * whatever they hold, known from the target alone (Pyroscope's label
   * limit), or undefined. The target builder asks it before anything is
   * scraped: the target is not sent there, and dropped when no repository
   * can take it.
   */
  refusesTarget?(config: z.output<S>, target: TargetSeries): string | undefined;
}

/** What a repository can judge of a target before anything is scraped. */
export interface TargetSeries {
  readonly service: string;
  readonly labels: Labels;
}

/** A descriptor, its config type taken from its schema. */
export function defineRepositoryKind<const K extends string, S extends z.ZodType>(descriptor: RepositoryDescriptor<K, S>): RepositoryDescriptor<K, S> {
  return descriptor;
}

const REPO_NAME_RE = /^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$/;

/** The fields every repository kind has: its name, queue bounds, retry backoff and send timeout. */
export const repositoryFields = {
  name: z
    .string()
    .regex(REPO_NAME_RE, { error: (iss) => `repository name ${quote(iss.input)} is not valid: use letters, digits, _ . -` })
    .optional()
    .meta({ description: 'Identifies the repository: its queue on disk, its metrics, and across reloads. Defaults to the kind; must be unique, so two of one kind need names.' }),
  queue: z
    .strictObject({
      max_size: size.default(1024 ** 3).meta({ description: 'Bytes of queued profiles; when full, the oldest are dropped first.' }),
      max_age: positiveDuration.default(86_400_000).meta({ description: 'A queued profile older than this is dropped.' }),
    })
    .prefault({})
    .meta({ description: 'The bounds of the repository\'s durable queue, which holds its profiles on disk until they are sent.' }),
  retry: z
    .strictObject({
      initial_backoff: positiveDuration.default(1000).meta({ description: 'The first wait after a retryable failure.' }),
      max_backoff: positiveDuration.default(120_000).meta({ description: 'The longest wait: the backoff doubles up to it.' }),
    })
    .prefault({})
    .meta({ description: 'Backoff with jitter between attempts after a retryable failure (408, 429, 5xx, timeout, network); a Retry-After is honoured.' }),
  timeout: positiveDuration.default(30_000).meta({ description: 'One attempt to send one profile.' }),
};

export type RepositoryCommon = z.output<z.ZodObject<typeof repositoryFields>>;

/** Extra HTTP headers on every request (Grafana Cloud's, a proxy's). */
export const headers = z.record(z.string().min(1), z.string()).meta({ description: 'Extra HTTP headers on every request (Grafana Cloud\'s, a proxy\'s).' });
