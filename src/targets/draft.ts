import type { Config, OverrideSettings } from '../config/index.js';
import { formatDuration, parseDuration } from '../config/index.js';
import { MIN_INTERVAL_MS } from '../config/target-settings.js';
import { parsePort } from './address.js';
import { sanitizeLabelName } from './labels.js';
import { pathProblem } from './path.js';

/** A target while it is built: each layer of settings changes it in turn. */
export interface Draft {
  service: string | undefined;
  host: string;
  port: number;
  scheme: 'http' | 'https';
  pathPrefix: string;
  labels: Record<string, string>;
  profiles: string[];
  interval: number | undefined;
}

/** Applies one layer of settings: those it sets win over what came before. */
export function applySettings(draft: Draft, s: OverrideSettings, labels: Record<string, string>): void {
  if (s.service !== undefined) draft.service = s.service;
  if (s.port !== undefined) draft.port = s.port;
  if (s.scheme !== undefined) draft.scheme = s.scheme;
  if (s.path !== undefined) draft.pathPrefix = s.path.replace(/\/+$/, '');
  if (s.profiles !== undefined) draft.profiles = [...s.profiles];
  if (s.interval !== undefined) draft.interval = s.interval;
  if (s.labels !== undefined) Object.assign(labels, s.labels);
}

/** Applies `pprof.*` metadata; returns the reason to drop the target when a value is bad. */
export function applyDirectives(draft: Draft, directives: Readonly<Record<string, string>>, labels: Record<string, string>, config: Config, noun: string, owned: ReadonlySet<string>): string | undefined {
  const bad = (key: string, value: string, why: string): string => `${noun} ${key}: ${JSON.stringify(value)} ${why}`;
  for (const [key, value] of Object.entries(directives)) {
    switch (key) {
      case 'pprof.port': {
        const p = parsePort(value);
        if (typeof p === 'string') return bad(key, value, /out of range/.test(p) ? 'is out of range 1..65535' : 'is not a port');
        draft.port = p;
        break;
      }
      case 'pprof.path': {
        const problem = pathProblem(value);
        if (problem !== undefined) return bad(key, value, problem);
        draft.pathPrefix = value.replace(/\/+$/, '');
        break;
      }
      case 'pprof.scheme':
        if (value !== 'http' && value !== 'https') return bad(key, value, 'is not http or https');
        draft.scheme = value;
        break;
      case 'pprof.service':
        if (value.trim() === '') return bad(key, value, 'is empty');
        draft.service = value;
        break;
      case 'pprof.profiles': {
        const types = value.split(',').map((t) => t.trim()).filter((t) => t !== '');
        const unknown = types.filter((t) => !config.profiles[t]);
        if (types.length === 0) return bad(key, value, 'names no profile type');
        if (unknown.length > 0) return bad(key, value, `names unknown profile type${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (known: ${Object.keys(config.profiles).join(', ')})`);
        draft.profiles = types;
        break;
      }
      case 'pprof.interval': {
        const ms = parseDuration(value.trim());
        if (ms === undefined || ms <= 0 || !Number.isSafeInteger(ms)) return bad(key, value, 'is not a duration (like 30s or 5m)');
        if (ms < MIN_INTERVAL_MS) return bad(key, value, `is below the ${formatDuration(MIN_INTERVAL_MS)} minimum interval`);
        draft.interval = ms;
        break;
      }
      default:
        if (key.startsWith('pprof.label.')) {
          const name = sanitizeLabelName(key.slice('pprof.label.'.length));
          if (name !== undefined && owned.has(name)) return bad(key, name, `is a label the daemon owns; tags and labels cannot set it (the config file can): remove the ${noun}`);
          if (name !== undefined) labels[name] = value;
        }
      // other pprof.* keys (pprof.scrape=true, used in filters) carry no setting
    }
  }
  return undefined;
}
