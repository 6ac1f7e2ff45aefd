import { request } from 'undici';
import { createTargetClient } from '../http/index.js';
import { isTrace } from '../profiles/profile.js';
import type { ScrapedProfile } from '../profiles/profile.js';
import { resultOfError, resultOfStatus } from './http-result.js';
import type { Place, ProfileFields, Repository, SendResult } from './repository.js';
import type { ProfefeConfig } from './kinds/profefe.js';

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
 * The label naming a custom type sent as `other`, so that one custom type's
 * profiles can be found and merged apart from another's. Target label names
 * match [a-zA-Z_][a-zA-Z0-9_]*: with its dot, this one cannot be among them.
 */
export const PROFEFE_TYPE_LABEL = 'pprof.type';

/**
 * `created_at` in profefe's layout, 2006-01-02T15:04:05 in UTC with no zone;
 * undefined for a time that layout cannot hold (a year outside 0000-9999).
 */
export function profefeCreatedAt(ms: number): string | undefined {
  const d = new Date(ms);
  const year = d.getUTCFullYear();
  if (!Number.isFinite(ms) || year < 0 || year > 9999) return undefined;
  return `${String(year).padStart(4, '0')}${d.toISOString().slice(-20, -5)}`;
}

/**
 * The write query: `service`, `type`, `created_at` and `labels=k=v,k2=v2` as
 * profefe's agent writes it, each key and value escaped, then the joined
 * string escaped again as the query value.
 */
export function profefeQuery(service: string, type: string, labels: Readonly<Record<string, string>>, createdAt?: string): string {
  const joined = Object.entries(labels)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join(',');
  const when = createdAt === undefined ? '' : `&created_at=${encodeURIComponent(createdAt)}`;
  return `service=${encodeURIComponent(service)}&type=${encodeURIComponent(type)}${when}&labels=${encodeURIComponent(joined)}`;
}

export async function createProfefeRepository(name: string, config: ProfefeConfig): Promise<Repository> {
  const client = await createTargetClient(config);
  const base = config.url.replace(/\/+$/, '');
  const headers = { 'content-type': 'application/octet-stream', ...config.headers, ...client.headers };
  return {
    name,
    kind: 'profefe',
    placeOf: profefePlace,
    async send(profile: ScrapedProfile, signal: AbortSignal): Promise<SendResult> {
      const type = profefeType(profile.type);
      if (type === undefined) return { status: 'skipped', reason: 'profefe takes no allocs profiles (heap holds the same samples)' };
      // a trace (type trace, stored unparsed) has no samples and is not empty
      if (profile.sampleCount === 0 && !isTrace(profile)) return { status: 'skipped', reason: 'empty profile (no samples): profefe rejects those' };
      const createdAt = profefeCreatedAt(profile.time);
      if (createdAt === undefined) return { status: 'permanent', error: `profile time ${profile.time} ms is outside the years 0000-9999 that profefe's created_at can hold: not sent` };
      const labels = type === profile.type ? profile.labels : { ...profile.labels, [PROFEFE_TYPE_LABEL]: profile.type };
      const url = `${base}/api/0/profiles?${profefeQuery(profile.service, type, labels, createdAt)}`;
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

/**
 * The time profefe files a profile under (Collector.WriteProfile,
 * pkg/profefe/collector.go): the body's time_nanos when positive (a trace's
 * body is not read), else `created_at`, which holds whole seconds.
 */
export function profefeIndexTime(profile: Pick<ProfileFields, 'type' | 'time' | 'bodyTime'>): number {
  const own = profile.bodyTime;
  if (profile.type !== 'trace' && typeof own === 'number' && own > 0) return own;
  return Math.floor(profile.time / 1000) * 1000;
}

/**
 * profefe's index of one service's profiles (by service, by type, by label:
 * pkg/storage/badger/storage.go) is ordered by that time, and a query by
 * labels joins the indexes by profile ID, which profefe hands out in arrival
 * order (mergeJoinIDs): a profile that arrives after a later-dated one of its
 * service is missed by label queries. So one service's profiles go one at a
 * time, earliest first.
 */
export function profefePlace(profile: ProfileFields): Place {
  return { key: profile.service, time: profefeIndexTime(profile) };
}
