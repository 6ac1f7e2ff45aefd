import { existsSync } from 'node:fs';

/** Where an installed daemon keeps its config (the .deb ships it there, the unit passes it). */
export const SYSTEM_CONFIG = '/etc/pprof-scraper/config.yaml';
/** Names the config file when there is no --config: a container or a wrapper script sets it. */
export const CONFIG_ENV = 'PPROF_SCRAPER_CONFIG';
/** Moves the system config's path, for tests and for packagers with another layout. */
export const SYSTEM_CONFIG_ENV = 'PPROF_SCRAPER_SYSTEM_CONFIG';

/** Which config a command uses, and why that one. */
export type ConfigChoice =
  | { readonly path: string; readonly from: 'flag' | 'env' | 'system' }
  | { readonly path: undefined; readonly from: 'default' };

/**
 * The config a command uses when it runs: --config, else $PPROF_SCRAPER_CONFIG,
 * else /etc/pprof-scraper/config.yaml when that file exists, else the embedded
 * default. An explicit choice wins over a found file: a --config or variable
 * naming a missing file is an error (the loader's), never a quiet fallback.
 * The system file is taken when it exists at all, readable or not, so that a
 * config the user cannot read says so instead of running something else.
 */
export function chooseConfig(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): ConfigChoice {
  if (flag !== undefined) return { path: flag, from: 'flag' };
  const fromEnv = env[CONFIG_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return { path: fromEnv, from: 'env' };
  const system = systemConfigPath(env);
  if (existsSync(system)) return { path: system, from: 'system' };
  return { path: undefined, from: 'default' };
}

export function systemConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const moved = env[SYSTEM_CONFIG_ENV];
  return moved !== undefined && moved !== '' ? moved : SYSTEM_CONFIG;
}

/** One line saying which config and why, for the start log and `check`. */
export function describeChoice(choice: ConfigChoice, env: NodeJS.ProcessEnv = process.env): string {
  switch (choice.from) {
    case 'flag':
      return `config ${choice.path} (from --config)`;
    case 'env':
      return `config ${choice.path} (from ${CONFIG_ENV}; no --config given)`;
    case 'system':
      return `config ${choice.path} (the system config; no --config, ${CONFIG_ENV} not set)`;
    case 'default':
      return `the embedded default config (no --config, ${CONFIG_ENV} not set, no ${systemConfigPath(env)}): the daemon profiles itself into ./profiles`;
  }
}

/** The choice in a few words, for the status page: the file and why it, or the embedded default. */
export function choiceSource(choice: ConfigChoice): string {
  switch (choice.from) {
    case 'flag':
      return `${choice.path} (--config)`;
    case 'env':
      return `${choice.path} (${CONFIG_ENV})`;
    case 'system':
      return `${choice.path} (the system config)`;
    case 'default':
      return '<embedded default>';
  }
}
