import { request } from 'undici';
import type { ProfefeConfig } from '../config/index.js';
import { createTargetClient } from '../scrape/clients.js';
import type { ScrapedProfile } from '../profiles/profile.js';
import { resultOfError, resultOfStatus } from './http-result.js';
import type { Repository, SendResult } from './repository.js';

/** The types profefe knows; anything else is refused with 400. */
const PROFEFE_TYPES = new Set(['cpu', 'heap', 'block', 'mutex', 'goroutine', 'threadcreate', 'other', 'trace']);

/**
 * profefe's type for one of ours: `allocs` is not sent (heap carries the same
 * samples), custom types go as `other`.
 */
export function profefeType(type: string): string | undefined {
  if (type === 'allocs') return undefined;
  return PROFEFE_TYPES.has(type) ? type : 'other';
}

/**
 * `labels=k=v,k2=v2` as profefe's agent writes it: each key and value
 * escaped, then the joined string escaped again as the query value.
 */
export function profefeQuery(service: string, type: string, labels: Readonly<Record<string, string>>): string {
  const joined = Object.entries(labels)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join(',');
  return `service=${encodeURIComponent(service)}&type=${encodeURIComponent(type)}&labels=${encodeURIComponent(joined)}`;
}

export async function createProfefeRepository(name: string, config: ProfefeConfig): Promise<Repository> {
  const client = await createTargetClient(config);
  const base = config.url.replace(/\/+$/, '');
  const headers = { 'content-type': 'application/octet-stream', ...config.headers, ...client.headers };
  return {
    name,
    kind: 'profefe',
    async send(profile: ScrapedProfile, signal: AbortSignal): Promise<SendResult> {
      const type = profefeType(profile.type);
      if (type === undefined) return { status: 'skipped', reason: 'profefe takes no allocs profiles (heap holds the same samples)' };
      if (profile.sampleCount === 0) return { status: 'skipped', reason: 'empty profile (no samples): profefe rejects those' };
      const url = `${base}/api/0/profiles?${profefeQuery(profile.service, type, profile.labels)}`;
      try {
        const res = await request(url, { method: 'POST', body: profile.data, headers, dispatcher: client.dispatcher, signal });
        const text = res.statusCode >= 300 ? await res.body.text() : (await res.body.dump(), '');
        return resultOfStatus(res.statusCode, text, firstHeader(res.headers['retry-after']));
      } catch (err) {
        return resultOfError(err, `POST ${base}/api/0/profiles`);
      }
    },
    close: () => client.close(),
  };
}

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
