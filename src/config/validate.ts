import { PROVIDER_KINDS, PROVIDERS } from '../discovery/registry.js';
import { REPOSITORIES, REPOSITORY_KINDS } from '../repositories/registry.js';
import { clientIssues } from './fields.js';
import { closest, isMap } from './issues.js';
import type { AddIssue, ConfigIssue, IssuePath, RawMap } from './issues.js';
import { DEFAULT_PROFILES, DEFAULT_SCRAPE, shortestCronGap } from './schema.js';
import { formatDuration, parseDuration, parseSize } from './units.js';

// Checks that span several fields. They run on the raw YAML data, next to the
// schema, so a file with a typo in one place still gets every other error
// reported; each check looks only at values that are the right shape. The
// checks of one kind's block are its descriptor's (discovery/kinds/,
// repositories/kinds/), called here with paths relative to the block.

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function durationOf(v: unknown): number | undefined {
  return typeof v === 'string' ? parseDuration(v) : undefined;
}

export function crossFieldIssues(raw: RawMap, _baseDir: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const add: AddIssue = (path, message) => {
    issues.push({ path, message });
  };

  const profiles = isMap(raw['profiles']) ? raw['profiles'] : (DEFAULT_PROFILES as unknown as RawMap);
  const typeNames = Object.keys(profiles);
  const secondsOf = (type: string): number | undefined => {
    const t = profiles[type];
    return isMap(t) && typeof t['seconds'] === 'number' ? t['seconds'] : undefined;
  };
  const enabledTypes = typeNames.filter((t) => {
    const def = profiles[t];
    return !(isMap(def) && def['enabled'] === false);
  });

  const checkProfileList = (path: IssuePath, value: unknown): string[] | undefined => {
    if (!Array.isArray(value)) return undefined;
    value.forEach((name, i) => {
      if (typeof name === 'string' && !typeNames.includes(name)) {
        const guess = closest(name, typeNames);
        add([...path, i], `unknown profile type ${JSON.stringify(name)}${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ''}: the types are the keys of profiles: (${typeNames.join(', ')})`);
      }
    });
    return value.filter((v): v is string => typeof v === 'string');
  };

  // A CPU-style profile takes `seconds`; a tick that comes sooner would always be skipped.
  const checkInterval = (path: IssuePath, intervalText: unknown, types: readonly string[] | undefined): void => {
    const interval = durationOf(intervalText);
    if (interval === undefined) return;
    for (const t of types ?? enabledTypes) {
      const s = secondsOf(t);
      if (s !== undefined && s * 1000 >= interval) {
        add(path, `interval ${String(intervalText)} is not longer than profiles.${t}.seconds (${s}s): make the interval longer than the CPU profile's seconds, or shorten seconds`);
      }
    }
  };

  // The per-target settings at `path`: the types they name, else `inherited`, against their interval.
  const checkSettings = (path: IssuePath, settings: RawMap, inherited: readonly string[] | undefined): readonly string[] | undefined => {
    const types = checkProfileList([...path, 'profiles'], settings['profiles']) ?? inherited;
    checkInterval([...path, 'interval'], settings['interval'], types);
    return types;
  };

  // scrape:
  const scrape = isMap(raw['scrape']) ? raw['scrape'] : {};
  if (scrape['schedule'] !== undefined && scrape['interval'] !== undefined) {
    add(['scrape', 'schedule'], 'set either scrape.interval or scrape.schedule, not both');
  }
  if (scrape['spread'] !== undefined && scrape['schedule'] === undefined) {
    add(['scrape', 'spread'], 'spread only applies to a cron schedule: set scrape.schedule, or remove spread');
  }
  if (typeof scrape['schedule'] === 'string') {
    const gap = shortestCronGap(scrape['schedule']);
    const given = scrape['spread'];
    const spread = given === undefined ? DEFAULT_SCRAPE.spread : durationOf(given);
    if (gap !== undefined && spread !== undefined && spread >= gap) {
      if (typeof given === 'string') {
        add(['scrape', 'spread'], `spread ${given} is not shorter than the time between ticks of ${JSON.stringify(scrape['schedule'])} (${formatDuration(gap)})`);
      } else {
        add(['scrape', 'schedule'], `spread defaults to ${formatDuration(spread)}, which is not shorter than the time between ticks of ${JSON.stringify(scrape['schedule'])} (${formatDuration(gap)}): set scrape.spread below ${formatDuration(gap)} (0s for none)`);
      }
    }
    for (const t of enabledTypes) {
      const s = secondsOf(t);
      if (gap !== undefined && s !== undefined && s * 1000 >= gap) {
        add(['scrape', 'schedule'], `ticks of ${JSON.stringify(scrape['schedule'])} come every ${formatDuration(gap)}, not longer than profiles.${t}.seconds (${s}s)`);
      }
    }
  } else if (scrape['interval'] !== undefined) {
    checkInterval(['scrape', 'interval'], scrape['interval'], undefined);
  } else {
    for (const t of enabledTypes) {
      const s = secondsOf(t);
      if (s !== undefined && s * 1000 >= DEFAULT_SCRAPE.interval) add(['profiles', t, 'seconds'], `seconds ${s} is not shorter than the default interval (${DEFAULT_SCRAPE.interval / 1000}s): shorten it or set scrape.interval`);
    }
  }
  const maxSize = parseSize((scrape['max_profile_size'] ?? DEFAULT_SCRAPE.max_profile_size) as string | number);
  const maxDecompressed = parseSize((scrape['max_decompressed_size'] ?? DEFAULT_SCRAPE.max_decompressed_size) as string | number);
  if (maxSize !== undefined && maxDecompressed !== undefined && maxDecompressed < maxSize) {
    add(['scrape', 'max_decompressed_size'], 'max_decompressed_size must be at least max_profile_size');
  }
  clientIssues(scrape, at(['scrape'], add));

  // discovery:
  list(raw['discovery']).forEach((entry, i) => {
    if (!isMap(entry)) return;
    const kinds = PROVIDER_KINDS.filter((k) => entry[k] !== undefined);
    if (kinds.length === 0 && Object.keys(entry).every((k) => (PROVIDER_KINDS as readonly string[]).includes(k))) {
      add(['discovery', i], `a discovery entry needs one provider: ${PROVIDER_KINDS.join(', ')}`);
    }
    if (kinds.length > 1) add(['discovery', i], `one provider per entry: this one has ${kinds.join(' and ')}; give each its own list item`);
    for (const kind of kinds) {
      const block = entry[kind];
      if (!isMap(block)) continue;
      const path = ['discovery', i, kind];
      const blockTypes = checkSettings(path, block, undefined);
      clientIssues(block, at(path, add));
      PROVIDERS[kind].validate?.(block, at(path, add), (nested, settings) => {
        checkSettings([...path, ...nested], settings, blockTypes);
      });
    }
  });

  // overrides:
  list(raw['overrides']).forEach((rule, i) => {
    if (!isMap(rule)) return;
    const path = ['overrides', i];
    checkSettings(path, rule, undefined);
    const sets = Object.keys(rule).filter((k) => k !== 'match' && k !== 'drop');
    if (rule['drop'] !== true && sets.length === 0) add(path, 'this rule sets nothing: give drop: true or a setting (port, path, scheme, service, labels, profiles, interval)');
    if (rule['drop'] === true && sets.length > 0) add(path, `a drop rule cannot also set ${sets.join(', ')}`);
  });

  // repositories:
  const names = new Map<string, number>();
  list(raw['repositories']).forEach((entry, i) => {
    if (!isMap(entry)) return;
    const kinds = REPOSITORY_KINDS.filter((k) => entry[k] !== undefined);
    if (kinds.length === 0 && Object.keys(entry).every((k) => (REPOSITORY_KINDS as readonly string[]).includes(k))) {
      add(['repositories', i], `a repository entry needs one kind: ${REPOSITORY_KINDS.join(', ')}`);
    }
    if (kinds.length > 1) add(['repositories', i], `one repository per entry: this one has ${kinds.join(' and ')}; give each its own list item`);
    const kind = kinds[0];
    if (kind === undefined || kinds.length > 1) return;
    const block = isMap(entry[kind]) ? entry[kind] : {};
    const name = typeof block['name'] === 'string' ? block['name'] : kind;
    const first = names.get(name);
    if (first !== undefined) {
      add(['repositories', i, kind, ...(block['name'] !== undefined ? ['name'] : [])], `repository name ${JSON.stringify(name)} is already used by repositories[${first}]: set a unique name: on each`);
    } else {
      names.set(name, i);
    }
    REPOSITORIES[kind].validate?.(block, at(['repositories', i, kind], add));
    const retry = block['retry'];
    if (isMap(retry)) {
      const initial = durationOf(retry['initial_backoff']);
      const max = durationOf(retry['max_backoff']);
      if (initial !== undefined && max !== undefined && max < initial) add(['repositories', i, kind, 'retry', 'max_backoff'], 'max_backoff must be at least initial_backoff');
    }
  });

  // server:
  const server = raw['server'];
  const listenerAuth = isMap(server) ? server['basic_auth'] : undefined;
  if (isMap(listenerAuth)) {
    const given = ['password_hash', 'password_hash_file'].filter((k) => listenerAuth[k] !== undefined);
    if (given.length !== 1) add(['server', 'basic_auth'], `basic_auth needs exactly one of password_hash or password_hash_file${given.length > 1 ? ', not both' : ''}`);
  }

  // shard:
  const shard = raw['shard'];
  if (isMap(shard) && typeof shard['count'] === 'number' && typeof shard['index'] === 'number' && shard['count'] >= 1 && shard['index'] >= shard['count']) {
    add(['shard', 'index'], `shard index ${shard['index']} must be below shard count ${shard['count']} (0..${shard['count'] - 1})`);
  }
  return issues;
}

/** `add` for checks whose paths are relative to `prefix`. */
function at(prefix: IssuePath, add: AddIssue): AddIssue {
  return (path, message) => add([...prefix, ...path], message);
}
