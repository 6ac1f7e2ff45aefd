export { ConfigLoadError, EMBEDDED_SOURCE, formatConfigError, loadConfigFile, loadEmbeddedDefault, parseConfig } from './load.js';
export type { ConfigError, LoadedConfig, LoadOptions } from './load.js';
export { createConfigSchema, DEFAULT_PROFILES, PROVIDER_KINDS, REPOSITORY_KINDS } from './schema.js';
export type {
  ClientSettings,
  Config,
  DirectoryConfig,
  DiscoveryEntry,
  DockerConfig,
  Ec2Config,
  MatchValue,
  OverrideRule,
  OverrideSettings,
  ProfefeConfig,
  ProfileTypeConfig,
  ProviderKind,
  PyroscopeConfig,
  RepositoryEntry,
  RepositoryKind,
  S3Config,
  ScrapeConfig,
  StaticConfig,
} from './schema.js';
export { configJsonSchema } from './json-schema.js';
export { identityOf } from './identity.js';
export { Secret } from './secret.js';
export { formatDuration, formatSize, parseDuration, parseSize } from './units.js';
