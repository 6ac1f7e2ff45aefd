export { ConfigLoadError, EMBEDDED_SOURCE, formatConfigError, loadConfigFile, loadEmbeddedDefault, MAX_ALIAS_VALUES, MAX_CONFIG_BYTES, MAX_DEPTH, parseConfig, readConfigText } from './load.js';
export type { ConfigError, LoadedConfig, LoadOptions } from './load.js';
export { createConfigSchema, DEFAULT_PROFILES, PROVIDER_KINDS, providerOf } from './schema.js';
export { DEFAULT_PROFILE_LIMITS } from './profile-limits.js';
export type {
  Config,
  DiscoveryEntry,
  DockerConfig,
  Ec2Config,
  MatchValue,
  OverrideRule,
  OverrideSettings,
  ProfileTypeConfig,
  ProviderKind,
  RepositoryEntry,
  ScrapeConfig,
  StaticConfig,
} from './schema.js';
export type { ClientSettings, SchemaContext } from './fields.js';
export type { ProfileLimits } from './profile-limits.js';
// each repository kind's settings, beside the config's other sections
export type { DirectoryConfig } from '../repositories/kinds/directory.js';
export type { ProfefeConfig } from '../repositories/kinds/profefe.js';
export type { PyroscopeConfig } from '../repositories/kinds/pyroscope.js';
export type { S3Config } from '../repositories/kinds/s3.js';
export { configJsonSchema } from './json-schema.js';
export { identityOf } from './identity.js';
export { Secret } from './secret.js';
export { formatDuration, formatSize, parseDuration, parseSize } from './units.js';
