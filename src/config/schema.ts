import { resolve } from 'node:path';
import { z } from 'zod';
import { Cron } from 'croner';
import { PROVIDERS } from '../discovery/registry.js';
import { REPOSITORIES } from '../repositories/registry.js';
import { clientFields, duration, filePath, positiveDuration, quote, size } from './fields.js';
import type { SchemaContext } from './fields.js';
import { profileLimitFields } from './profile-limits.js';
import { relabelConfigs } from './relabel.js';
import { Secret } from './secret.js';
import { interval, labelMap, overrideFields, urlPath } from './target-settings.js';
import { DEFAULT_DENY_CIDRS, parseCidr } from '../targets/address-policy.js';

// The config file's shape. Leaves are turned into what the daemon uses
// (durations in ms, sizes in bytes, secrets wrapped, file paths made absolute)
// so nothing downstream parses text again. Checks that span several fields
// live in validate.ts, so they can run on whatever parts of a broken file parsed.
// Each discovery and repository kind's block comes from its descriptor
// (discovery/registry.ts, repositories/registry.ts).

const TYPE_NAME_RE = /^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$/;

const cidr = z.string().superRefine((text, ctx) => {
  const parsed = parseCidr(text);
  if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed });
});

function scrapeSchema(ctx: SchemaContext) {
  return z.strictObject({
    interval: interval.default(60_000).meta({ description: 'How often each target × type is taken; at least 1s.' }),
    schedule: z
      .string()
      .refine(
        (expr) => {
          try {
            new Cron(expr, { paused: true });
            return true;
          } catch {
            return false;
          }
        },
        { error: (iss) => `${quote(iss.input)} is not a cron expression (like "*/10 * * * *")` },
      )
      .optional()
      .meta({ description: 'A cron expression (5 or 6 fields, like "*/10 * * * *") to take profiles at, instead of interval; not both.' }),
    spread: duration.default(30_000).meta({ description: 'With schedule: each target\'s tick is delayed by a stable offset within this window; shorter than the time between ticks.' }),
    timeout: positiveDuration.default(10_000).meta({ description: 'One request; a CPU-style type gets its seconds on top. May exceed interval: a tick whose previous scrape still runs is skipped.' }),
    concurrency: z.number().int().min(1, { error: 'concurrency must be at least 1' }).default(64).meta({ description: 'Requests in flight, all targets together. A CPU profile holds a slot only while its answer is read.' }),
    max_profile_size: size.default(64 * 1024 ** 2).meta({ description: 'A profile\'s body as received (a trace\'s too).' }),
    ...profileLimitFields,
    labels: labelMap.default({}).meta({ description: 'Labels added to every profile.' }),
    deny_cidrs: z
      .array(cidr)
      .default([...DEFAULT_DENY_CIDRS])
      .meta({ description: 'Addresses never scraped, whoever names them (config, tag, label, DNS). A list here replaces the default (link-local and the cloud metadata addresses): list those too to keep them.' }),
    allow_cidrs: z
      .array(cidr)
      .min(1, { error: 'allow_cidrs must list at least one CIDR; leave it out to allow every address that deny_cidrs does not deny' })
      .optional()
      .meta({ description: 'When set, only addresses in these ranges are scraped (deny_cidrs still applies).' }),
    ...clientFields(ctx),
  });
}

/** `scrape:` as a file that leaves out a key has it: validate.ts reads its defaults here. */
export const DEFAULT_SCRAPE = scrapeSchema({ baseDir: '.', checkFiles: false }).parse({});

/** The most `seconds` a CPU-style type takes, given or derived. */
export const MAX_CPU_SECONDS = 3600;

/** The type whose `seconds`, when not given, follows its interval. */
export const CPU_TYPE = 'cpu';

/**
 * The trace type's `seconds` when the file gives none: Go's own default for
 * /debug/pprof/trace. A trace grows with everything the process does, so its
 * window does not follow the interval as the cpu type's does.
 */
export const DEFAULT_TRACE_SECONDS = 1;

/**
 * The cpu type's `seconds` when the file gives none: the time between its
 * ticks in whole seconds, less a tenth of it (at least 1 s, at most 5 s), so
 * the profiles cover the time but for the margin in which a profile is sent
 * before the next one starts. Never below 1, never above MAX_CPU_SECONDS.
 * 60s takes 55, 15s takes 14 (as Alloy), 10s takes 9, 1s and 2s take 1.
 */
export function defaultCpuSeconds(periodMs: number): number {
  const whole = Math.floor(periodMs / 1000);
  const margin = Math.min(5, Math.max(1, Math.floor(whole / 10)));
  return Math.min(MAX_CPU_SECONDS, Math.max(1, whole - margin));
}

/** The shortest time between two ticks of a cron expression, from its next few runs. */
export function shortestCronGap(expr: string): number | undefined {
  try {
    const runs = new Cron(expr, { paused: true }).nextRuns(50);
    let gap: number | undefined;
    for (let i = 1; i < runs.length; i++) {
      const d = (runs[i]?.getTime() ?? 0) - (runs[i - 1]?.getTime() ?? 0);
      gap = gap === undefined ? d : Math.min(gap, d);
    }
    return gap;
  } catch {
    return undefined;
  }
}

const profileType = z.strictObject({
  path: urlPath.meta({ description: 'The type\'s URL path on a target, like /debug/pprof/heap.' }),
  seconds: z
    .number()
    .int()
    .min(1, { error: 'seconds must be at least 1' })
    .max(MAX_CPU_SECONDS, { error: `seconds must be at most ${MAX_CPU_SECONDS}` })
    .optional()
    .meta({ description: 'CPU-style type: sent as ?seconds=N; the request may take N seconds plus scrape.timeout. The cpu type without seconds takes the interval less a tenth of it (at least 1s, at most 5s) in whole seconds; the trace type without seconds takes 1 (Go\'s default).' }),
  enabled: z.boolean().default(true).meta({ description: 'false keeps the type out of the default set; a target can still name it.' }),
  delta: z.boolean().default(false).meta({ description: 'The endpoint already serves deltas (godeltaprof /debug/pprof/delta_*).' }),
}).meta({ description: 'A profile type: where a target serves it, and for a CPU-style type how many seconds it takes.' });

export const DEFAULT_PROFILES = {
  cpu: { path: '/debug/pprof/profile', enabled: true, delta: false },
  heap: { path: '/debug/pprof/heap', enabled: true, delta: false },
  allocs: { path: '/debug/pprof/allocs', enabled: true, delta: false },
  goroutine: { path: '/debug/pprof/goroutine', enabled: true, delta: false },
  block: { path: '/debug/pprof/block', enabled: true, delta: false },
  mutex: { path: '/debug/pprof/mutex', enabled: true, delta: false },
  threadcreate: { path: '/debug/pprof/threadcreate', enabled: false, delta: false },
  // a Go execution trace, not pprof: its bytes go to profefe, directory and s3 as Go wrote them
  trace: { path: '/debug/pprof/trace', enabled: false, delta: false },
} as const;

const profilesSchema = z.record(
  z.string().regex(TYPE_NAME_RE, { error: (iss) => `profile type name ${quote(iss.input)} is not valid: use letters, digits, _ . -` }),
  profileType,
);

/**
 * One item of a list whose items each hold the block of one kind under its
 * kind's key (`discovery:`, `repositories:`), each kind's schema from its
 * descriptor in the registry (validate.ts sees that there is one).
 */
function entryOf<R extends { readonly [kind: string]: { schema(ctx: SchemaContext): z.ZodType } }>(registry: R, ctx: SchemaContext) {
  const blocks = Object.fromEntries(Object.entries(registry).map(([kind, descriptor]) => [kind, descriptor.schema(ctx).optional()]));
  return z.strictObject(blocks as { [K in keyof R]: z.ZodOptional<ReturnType<R[K]['schema']>> });
}

const matchValue = z.union([z.string(), z.number(), z.boolean()]).transform((v, c) => {
  const text = String(v);
  const re = /^\/(.*)\/([imsu]*)$/s.exec(text);
  if (!re) return { equals: text };
  try {
    return { regex: new RegExp(re[1] ?? '', re[2] ?? '') };
  } catch (err) {
    c.addIssue({ code: 'custom', message: `${quote(text)} is not a valid regular expression: ${(err as Error).message}` });
    return z.NEVER;
  }
});

const overrideRule = z.strictObject({
  match: z
    .record(z.string().min(1), matchValue)
    .refine((m) => Object.keys(m).length > 0, { error: 'match must name at least one label' })
    .meta({ description: 'Labels and metadata (service, address, scheme, provider, instance, tag_<name>, label_<name>) the target must have, every one: a value is compared as text, /regex/ is searched.' }),
  drop: z.boolean().default(false).meta({ description: 'Drop the matching targets (the rule then sets nothing else).' }),
  ...overrideFields,
});

/** `$STATE_DIRECTORY` (systemd's StateDirectory=; the first when it lists several), else `./data`. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromSystemd = env['STATE_DIRECTORY']?.split(':')[0];
  return fromSystemd !== undefined && fromSystemd !== '' ? fromSystemd : './data';
}

const listen = z.string().refine((v) => /^(\[[0-9a-fA-F:.]+\]|[^:\s]*):\d{1,5}$/.test(v) && Number(v.slice(v.lastIndexOf(':') + 1)) <= 65535, {
  error: (iss) => `listen ${quote(iss.input)} must be host:port, like 127.0.0.1:10101`,
});

// The status listener's own settings. Its Host check, cross-site refusal and
// reload opt-in are described in docs/security.md ("The status listener").
export const BCRYPT_RE = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;

const allowedHost = z
  .string()
  .transform((h) => h.toLowerCase().replace(/\.$/, ''))
  .refine((h) => /^[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?$/.test(h), {
    error: (iss) => `allowed_hosts entry ${quote(iss.input)} must be a bare host name, like status.example.com (no scheme, port or path: the port is not compared)`,
  });

function serverSchema(ctx: SchemaContext) {
  return z.strictObject({
    listen: listen.default('127.0.0.1:10101').meta({ description: 'host:port to serve on; a reload applies a change.' }),
    allowed_hosts: z
      .array(allowedHost)
      .default([])
      .meta({ description: 'Host names the status listener answers to besides IP addresses, localhost and the listen host (DNS rebinding protection). Case-insensitive; the port is not compared.' }),
    enable_reload: z.boolean().default(false).meta({ description: 'Allow POST /-/reload. SIGHUP and the config file watch reload either way.' }),
    basic_auth: z
      .strictObject({
        username: z.string().min(1, { error: 'username must not be empty' }).meta({ description: 'The user name.' }),
        password_hash: z
          .string()
          .refine((h) => BCRYPT_RE.test(h), { error: 'password_hash is not a bcrypt hash ($2y$10$ and 53 more characters): make one with htpasswd -nBC 10 "" | tr -d \':\\n\'' })
          .transform((h) => new Secret(h))
          .optional()
          .meta({ description: 'The bcrypt hash of the password: htpasswd -nBC 10 "" | tr -d \':\\n\'.' }),
        password_hash_file: filePath(ctx).optional().meta({ description: 'A file holding the bcrypt hash, read at start and at every reload.' }),
      })
      .optional()
      .meta({ description: 'Ask for a user name and password on every path but /healthz, /-/healthy and /-/ready. The password is given as a bcrypt hash.' }),
    tls: z
      .strictObject({
        cert_file: filePath(ctx).meta({ description: 'The certificate (PEM) the listener serves, read at start and at every reload.' }),
        key_file: filePath(ctx).meta({ description: 'The private key (PEM) of cert_file.' }),
        client_ca_file: filePath(ctx).optional().meta({ description: 'Require a client certificate signed by this CA.' }),
      })
      .optional()
      .meta({ description: 'Serve https instead of http.' }),
    health: z
      .strictObject({
        delivery_stall: positiveDuration
          .default(10 * 60_000)
          .meta({ description: 'GET /-/healthy answers 503 when a repository has profiles queued and has taken none for this long.' }),
        discovery_failure: positiveDuration
          .default(10 * 60_000)
          .meta({ description: 'GET /-/healthy answers 503 when every discovery provider has failed for this long (the last good targets are still scraped meanwhile).' }),
      })
      .prefault({})
      .meta({ description: 'When GET /-/healthy turns unhealthy (503, with the reason in the body).' }),
    target_up_limit: z
      .number()
      .int()
      .min(0, { error: 'target_up_limit must be 0 or more' })
      .default(5000)
      .meta({ description: 'Most series of pprof_scraper_target_up (one per target × profile type) /metrics exposes; a target × type past it gets none, and pprof_scraper_target_up_unexposed counts it. 0 turns the gauge off.' }),
  });
}

export function createConfigSchema(ctx: SchemaContext) {
  return z.strictObject({
    scrape: scrapeSchema(ctx)
      .prefault({})
      .meta({ description: 'How every target is scraped: when, within which limits, with which labels, TLS and credentials.' }),
    profiles: profilesSchema
      .default(DEFAULT_PROFILES)
      .meta({ description: 'The profile types to take, by name. A map here replaces the default set (cpu, heap, allocs, goroutine, block, mutex; threadcreate and trace disabled).' }),
    discovery: z
      .array(entryOf(PROVIDERS, ctx))
      .default([])
      .meta({ description: 'Where targets come from: a list of entries, each with exactly one provider key.' }),
    relabel_configs: relabelConfigs.default([]),
    overrides: z
      .array(overrideRule)
      .default([])
      .meta({ description: 'Rules applied to every target in order, later winning: each matches labels, then sets per-target settings or drops.' }),
    repositories: z
      .array(entryOf(REPOSITORIES, ctx))
      .min(1, { error: 'list at least one repository, so profiles have somewhere to go' })
      .meta({ description: 'Where profiles go: a list of entries, each with exactly one kind key. Each profile goes to each.' }),
    server: serverSchema(ctx)
      .prefault({})
      .meta({ description: 'The status listener: /metrics, /healthz, /targets, the status page, the daemon\'s own /debug/pprof.' }),
    shard: z
      .strictObject({
        count: z.number().int().min(1, { error: 'shard count must be at least 1' }).meta({ description: 'How many daemons split the targets.' }),
        index: z.number().int().min(0, { error: 'shard index must be 0 or more' }).meta({ description: 'This daemon\'s share, from 0 to count - 1.' }),
      })
      .optional()
      .meta({ description: 'Keep only the targets whose id hashes to index: run count daemons over the same config to split a fleet.' }),
    state_dir: z
      .string()
      .min(1)
      .optional()
      .transform((dir) => resolve(dir ?? defaultStateDir()))
      .meta({ description: 'Folder for durable state (the delivery queues, under queues/). Default: $STATE_DIRECTORY when set (systemd StateDirectory=), else ./data. Relative to the working directory.' }),
  });
}

export type ConfigSchema = ReturnType<typeof createConfigSchema>;
export type Config = z.output<ConfigSchema>;
export type ScrapeConfig = Config['scrape'];
export type ProfileTypeConfig = Config['profiles'][string];
export type DiscoveryEntry = Config['discovery'][number];
export type OverrideRule = Config['overrides'][number];
export type RepositoryEntry = Config['repositories'][number];
export type MatchValue = OverrideRule['match'][string];
export type ServerConfig = Config['server'];

