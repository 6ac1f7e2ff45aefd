import { createHash } from 'node:crypto';
import { Secret } from './secret.js';

/**
 * A canonical text of a config value, to tell whether a provider's or a
 * repository's settings changed across a reload. Secrets count by a hash of
 * their value (a rotated token is a change) without ever appearing in it.
 */
export function identityOf(value: unknown): string {
  return JSON.stringify(canonical(value));
}

function canonical(value: unknown): unknown {
  if (value instanceof Secret) return { secret: createHash('sha256').update(value.reveal()).digest('hex') };
  if (value instanceof RegExp) return { regex: String(value) };
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = canonical((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}
