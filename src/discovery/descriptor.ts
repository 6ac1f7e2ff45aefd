import { z } from 'zod';
import type { ClientSettings, SchemaContext } from '../config/fields.js';
import type { AddIssue, IssuePath, RawMap } from '../config/issues.js';
import type { RelabelSettings } from '../config/relabel.js';
import type { OverrideSettings } from '../config/target-settings.js';
import type { Provider, ProviderDeps } from './provider.js';

/**
 * What every provider block holds, whatever its kind: the settings of its
 * targets (overrideFields), how to reach them (clientFields) and its
 * relabeling rules (relabelField). The target builder and the scrape clients
 * read these of any block, so a kind whose schema lacks them does not
 * type-check.
 */
export type ProviderBlock = OverrideSettings & ClientSettings & RelabelSettings;

/**
 * Checks the `profiles:` and `interval:` of per-target settings nested in a
 * block (a static target's) against the file's profile types; settings that
 * name no types scrape the block's. The path is relative to the block.
 */
export type NestedSettingsCheck = (path: IssuePath, settings: RawMap) => void;

/**
 * One discovery kind, whole: the block its `discovery:` entries hold and how
 * to build its provider. The config schema, its JSON Schema, validation, the
 * provider factory and the scrape clients all read the registry of these
 * (registry.ts).
 */
export interface ProviderDescriptor<K extends string = string, S extends z.ZodType<ProviderBlock> = z.ZodType<ProviderBlock>> {
  /** The key of its entries under `discovery:`, and the kind of what it builds. */
  readonly kind: K;
  /** Its block with every default: overrideFields and clientFields spread into it. */
  schema(ctx: SchemaContext): S;
  /**
   * Checks across its fields, on the block as the YAML holds it (paths
   * relative to the block), so they run even where other parts of the file
   * do not parse. The block's own settings and client keys are checked for
   * every kind before this.
   */
  validate?(block: RawMap, add: AddIssue, checkSettings: NestedSettingsCheck): void;
  /**
   * Builds the provider. It imports the provider's module (and so any SDK
   * it loads) only now: the EC2 client alone weighs about a hundred MiB, and
   * a kind nobody configures loads nothing heavy.
   */
  create(config: z.output<S>, source: number, deps: ProviderDeps): Promise<Provider>;
}

/** A descriptor, its config type taken from its schema. */
export function defineProviderKind<const K extends string, S extends z.ZodType<ProviderBlock>>(descriptor: ProviderDescriptor<K, S>): ProviderDescriptor<K, S> {
  return descriptor;
}

/** A filter of the provider's API: one value or a list of them. */
export const filterValues = z
  .union([z.string(), z.array(z.string()).min(1)])
  .transform((v) => (typeof v === 'string' ? [v] : v));
