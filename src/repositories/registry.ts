import type { z } from 'zod';
import type { RepositoryDescriptor } from './descriptor.js';
import { directory } from './kinds/directory.js';
import { otlp } from './kinds/otlp.js';
import { parca } from './kinds/parca.js';
import { profefe } from './kinds/profefe.js';
import { pyroscope } from './kinds/pyroscope.js';
import { s3 } from './kinds/s3.js';

// Every repository kind under the key its `repositories:` entries use. The
// config schema, its JSON Schema, validation and the factory all read this
// record: a kind is its module in kinds/ and its line here.
const descriptors = { profefe, directory, pyroscope, s3, otlp, parca };

export type RepositoryKind = keyof typeof descriptors;

/** The schema of one kind's block. */
export type RepositorySchema<K extends RepositoryKind> = ReturnType<(typeof descriptors)[K]['schema']>;

/** One kind's settings, as its schema gives them. */
export type RepositoryConfig<K extends RepositoryKind> = z.output<RepositorySchema<K>>;

export const REPOSITORIES: { readonly [K in RepositoryKind]: RepositoryDescriptor<K, RepositorySchema<K>> } = descriptors;

/** In the order of the record, which messages and the JSON Schema follow. */
export const REPOSITORY_KINDS = Object.keys(REPOSITORIES) as readonly RepositoryKind[];
