export { ConfigLoadError, EMBEDDED_SOURCE, formatConfigError, loadConfigFile, loadEmbeddedDefault, MAX_ALIAS_VALUES, MAX_CONFIG_BYTES, MAX_DEPTH, parseConfig, readConfigText } from './load.js';
export type { ConfigError, LoadedConfig, LoadOptions } from './load.js';
export { createConfigSchema, DEFAULT_PROFILE_LIMITS, DEFAULT_PROFILES, PROVIDER_KINDS, REPOSITORY_KINDS } from './schema.js';
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
  ProfileLimits,
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
