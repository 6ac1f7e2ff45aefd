import { accessSync, constants } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { Cron } from 'croner';
import { redactUrl } from '../redact.js';
import { Secret } from './secret.js';
import { formatDuration, parseDuration, parseSize } from './units.js';
import { DEFAULT_DENY_CIDRS, parseCidr } from '../targets/address-policy.js';
import { pathProblem } from '../targets/path.js';

// The config file's shape. Leaves are turned into what the daemon uses
// (durations in ms, sizes in bytes, secrets wrapped, file paths made absolute)
// so nothing downstream parses text again. Checks that span several fields
// live in validate.ts, so they can run on whatever parts of a broken file parsed.

export interface SchemaContext {
  /** Folder of the config file: relative credential and CA file paths resolve against it. */
  readonly baseDir: string;
  /** When false, *_file paths are not checked on disk (schema export). */
  readonly checkFiles: boolean;
}

const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPE_NAME_RE = /^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$/;
const REPO_NAME_RE = /^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$/;

function quote(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

export const duration = z
  .string({ error: (iss) => `expected a duration like 10s or 5m, got ${describeInput(iss.input)}` })
  .transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `${quote(text)} is not a duration: use a number and a unit, like 250ms, 10s, 5m, 1h or 7d` });
      return z.NEVER;
    }
    return ms;
  })
  .meta({ description: 'A duration: 250ms, 10s, 5m, 1h, 7d, or combined like 1h30m.' });

const positiveDuration = duration.refine((ms) => ms > 0, { error: 'must be longer than 0s' });

/** No target × type is scraped more often than this, whoever sets the interval. */
export const MIN_INTERVAL_MS = 1000;

const interval = duration.refine((ms) => ms >= MIN_INTERVAL_MS && Number.isSafeInteger(ms), {
  error: (iss) =>
    typeof iss.input === 'number' && iss.input < MIN_INTERVAL_MS
      ? `interval ${formatDuration(iss.input)} is below the ${formatDuration(MIN_INTERVAL_MS)} minimum: no target is scraped more than once a second`
      : 'interval is too long to count in milliseconds: give a shorter one',
});

export const size = z
  .union([z.string(), z.number()], { error: (iss) => `expected a size like 64MiB, got ${describeInput(iss.input)}` })
  .transform((text, ctx) => {
    const bytes = parseSize(text);
    if (bytes === undefined || bytes <= 0) {
      ctx.addIssue({ code: 'custom', message: `${quote(text)} is not a size: use a number and a unit, like 512KiB, 64MiB or 10GiB` });
      return z.NEVER;
    }
    return bytes;
  })
  .meta({ description: 'A size in bytes, or with a unit: 512KiB, 64MiB, 10GiB (also KB, MB, GB).' });

export function describeInput(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${typeof v} ${v}`;
  return typeof v;
}

const port = z
  .number({ error: (iss) => `expected a port number, got ${describeInput(iss.input)}` })
  .refine((n) => Number.isInteger(n) && n >= 1 && n <= 65535, { error: (iss) => `port ${String(iss.input)} is out of range 1..65535` });

const scheme = z.enum(['http', 'https'], { error: (iss) => `scheme ${quote(iss.input)} is not http or https` });

// The same rule as a pprof.path tag: a query here would collide with the ?seconds=N the daemon adds.
const urlPath = z.string().superRefine((p, ctx) => {
  const problem = pathProblem(p);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `path ${quote(p)} ${problem}` });
});

const cidr = z.string().superRefine((text, ctx) => {
  const parsed = parseCidr(text);
  if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed });
});

const labelValue = z
  .union([z.string(), z.number(), z.boolean()], { error: (iss) => `a label value must be a string, got ${describeInput(iss.input)}` })
  .transform((v) => `${v}`);

export const labelMap = z.record(
  z.string().regex(LABEL_NAME_RE, { error: (iss) => `label name ${quote(iss.input)} is not valid: use letters, digits and _ (not first)` }),
  labelValue,
);

const secret = z.string().transform((v) => new Secret(v)).meta({ description: 'A secret. Prefer the *_file form; never printed.' });

// Credentials in a URL would be sent by no HTTP client here and shown by every
// log line: they are refused, as in static targets, and never quoted.
const url = z.string().superRefine((v, ctx) => {
  let u: URL | undefined;
  try {
    u = new URL(v);
  } catch {
    // not a URL: the check below says so
  }
  if (u?.protocol !== 'http:' && u?.protocol !== 'https:') {
    ctx.addIssue({ code: 'custom', message: `${quote(redactUrl(v))} is not an http:// or https:// URL` });
  } else if (u.username !== '' || u.password !== '') {
    ctx.addIssue({ code: 'custom', message: `${quote(redactUrl(v))} has credentials in it, which logs would show: remove them (profefe and pyroscope take basic_auth or bearer_token_file)` });
  }
});

function filePath(ctx: SchemaContext) {
  return z.string().transform((p, c) => {
    const abs = isAbsolute(p) ? p : resolve(ctx.baseDir, p);
    if (ctx.checkFiles) {
      try {
        accessSync(abs, constants.R_OK);
      } catch (err) {
        c.addIssue({ code: 'custom', message: `cannot read file ${quote(p)}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` });
        return z.NEVER;
      }
    }
    return abs;
  });
}

function tlsFields(ctx: SchemaContext) {
  return {
    ca_file: filePath(ctx).optional(),
    cert_file: filePath(ctx).optional(),
    key_file: filePath(ctx).optional(),
    server_name: z.string().optional(),
    insecure_skip_verify: z.boolean().optional(),
  };
}

function basicAuth(ctx: SchemaContext) {
  return z.strictObject({
    username: z.string(),
    password: secret.optional(),
    password_file: filePath(ctx).optional(),
  });
}

/** How to reach targets: TLS and credentials, under scrape: and on every provider block. */
function clientFields(ctx: SchemaContext) {
  return {
    tls: z.strictObject(tlsFields(ctx)).optional(),
    bearer_token: secret.optional(),
    bearer_token_file: filePath(ctx).optional(),
    basic_auth: basicAuth(ctx).optional(),
  };
}

/** The per-target settings: accepted by provider blocks, static targets and overrides: rules. */
const overrideFields = {
  service: z.string().min(1, { error: 'service must not be empty' }).optional(),
  labels: labelMap.optional(),
  port: port.optional(),
  path: urlPath.optional(),
  scheme: scheme.optional(),
  profiles: z.array(z.string()).min(1, { error: 'profiles must list at least one type' }).optional(),
  interval: interval.optional(),
};

function structureLimit(key: string, fallback: number) {
  return z
    .number({ error: (iss) => `${key} must be a whole number, got ${describeInput(iss.input)}` })
    .int({ error: `${key} must be a whole number` })
    .min(1, { error: `${key} must be at least 1` })
    .default(fallback);
}

// What one profile may hold, counted in one pass over its bytes before
// anything decodes it. Each default is several times what the largest real Go
// profiles hold, and far below what a few KiB of gzip can claim (decoded into
// objects, a sample costs about 450 bytes, a string 230, a location 180, a
// label or a line 60, a frame 10).
const profileLimitFields = {
  max_decompressed_size: size.default(256 * 1024 ** 2),
  max_samples: structureLimit('max_samples', 1_000_000),
  max_sample_types: structureLimit('max_sample_types', 8),
  max_frames: structureLimit('max_frames', 16_000_000).meta({ description: 'Location ids in all samples together (stack frames).' }),
  max_labels: structureLimit('max_labels', 4_000_000).meta({ description: 'Labels in all samples together.' }),
  max_locations: structureLimit('max_locations', 1_000_000),
  max_lines: structureLimit('max_lines', 2_000_000).meta({ description: 'Lines in all locations together (inlined calls add lines).' }),
  max_functions: structureLimit('max_functions', 1_000_000),
  max_mappings: structureLimit('max_mappings', 10_000),
  max_strings: structureLimit('max_strings', 1_000_000).meta({ description: 'Entries of the string table.' }),
  max_string_table_size: size.default(64 * 1024 ** 2).meta({ description: 'Bytes of all strings of the string table together.' }),
};

/** The limits a profile is scanned and decoded under: the `scrape:` keys of the same names. */
export const profileLimitsSchema = z.strictObject(profileLimitFields);
export type ProfileLimits = z.output<typeof profileLimitsSchema>;
/** The limits where no config is at hand. */
export const DEFAULT_PROFILE_LIMITS: ProfileLimits = profileLimitsSchema.parse({});

function scrapeSchema(ctx: SchemaContext) {
  return z.strictObject({
    interval: interval.default(60_000),
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
      .optional(),
    spread: duration.default(30_000),
    timeout: positiveDuration.default(10_000),
    concurrency: z.number().int().min(1, { error: 'concurrency must be at least 1' }).default(64),
    max_profile_size: size.default(64 * 1024 ** 2),
    ...profileLimitFields,
    labels: labelMap.default({}),
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
  path: urlPath,
  seconds: z
    .number()
    .int()
    .min(1, { error: 'seconds must be at least 1' })
    .max(MAX_CPU_SECONDS, { error: `seconds must be at most ${MAX_CPU_SECONDS}` })
    .optional()
    .meta({ description: 'CPU-style type: sent as ?seconds=N; the request may take N seconds plus scrape.timeout. The cpu type without seconds takes the interval less a tenth of it (at least 1s, at most 5s) in whole seconds; the trace type without seconds takes 1 (Go\'s default).' }),
  enabled: z.boolean().default(true).meta({ description: 'false keeps the type out of the default set; a target can still name it.' }),
  delta: z.boolean().default(false).meta({ description: 'The endpoint already serves deltas (godeltaprof /debug/pprof/delta_*).' }),
});

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

function staticSchema(ctx: SchemaContext) {
  const targetObject = z.strictObject({ address: z.string().min(1), ...overrideFields });
  return z.strictObject({
    targets: z
      .array(z.union([z.string().min(1), targetObject]))
      .min(1, { error: 'targets must list at least one address' }),
    ...overrideFields,
    ...clientFields(ctx),
  });
}

const ec2AddressKinds = ['private_ip', 'public_ip', 'private_dns', 'public_dns', 'ipv6'] as const;

const filterValues = z
  .union([z.string(), z.array(z.string()).min(1)])
  .transform((v) => (typeof v === 'string' ? [v] : v));

function ec2Schema(ctx: SchemaContext) {
  return z.strictObject({
    region: z.string().min(1).optional(),
    regions: z.array(z.string().min(1)).min(1).optional(),
    profile: z.string().min(1).optional(),
    role_arn: z.string().regex(/^arn:[^:]+:iam::\d{12}:role\/.+$/, { error: (iss) => `${quote(iss.input)} is not an IAM role ARN` }).optional(),
    external_id: z.string().optional(),
    endpoint: url.optional(),
    filters: z.record(z.string().min(1), filterValues).default({}),
    address: z.enum(ec2AddressKinds, { error: (iss) => `address ${quote(iss.input)} is not one of ${ec2AddressKinds.join(', ')}` }).default('private_ip'),
    service_tag: z.string().min(1).default('Name'),
    tag_labels: z.array(z.string().min(1)).default([]),
    refresh: positiveDuration.default(60_000),
    ...overrideFields,
    port: port.default(6060),
    ...clientFields(ctx),
  });
}

function dockerSchema(ctx: SchemaContext) {
  return z.strictObject({
    host: z
      .string()
      .refine((h) => /^(unix|tcp|http|https):\/\/.+/.test(h), { error: (iss) => `host ${quote(iss.input)} must be unix:///path/to/docker.sock or tcp://host:port` })
      .optional(),
    // `ca`, `cert`, `key` are for the engine API (tcp:// with TLS); the *_file
    // keys, as everywhere else, are for reaching the containers' pprof.
    tls: z
      .strictObject({
        ca: filePath(ctx).optional(),
        cert: filePath(ctx).optional(),
        key: filePath(ctx).optional(),
        ...tlsFields(ctx),
      })
      .optional(),
    filters: z.record(z.string().min(1), filterValues).default({}),
    network: z.string().min(1).optional(),
    host_address: z.string().min(1).default('127.0.0.1'),
    refresh: positiveDuration.default(30_000),
    ...overrideFields,
    port: port.default(6060),
    bearer_token: secret.optional(),
    bearer_token_file: filePath(ctx).optional(),
    basic_auth: basicAuth(ctx).optional(),
  });
}

function discoveryEntry(ctx: SchemaContext) {
  return z.strictObject({
    static: staticSchema(ctx).optional(),
    ec2: ec2Schema(ctx).optional(),
    docker: dockerSchema(ctx).optional(),
  });
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
    .refine((m) => Object.keys(m).length > 0, { error: 'match must name at least one label' }),
  drop: z.boolean().default(false),
  ...overrideFields,
});

const queueSchema = z.strictObject({
  max_size: size.default(1024 ** 3),
  max_age: positiveDuration.default(86_400_000),
});

const retrySchema = z.strictObject({
  initial_backoff: positiveDuration.default(1000),
  max_backoff: positiveDuration.default(120_000),
});

const repositoryCommon = {
  name: z
    .string()
    .regex(REPO_NAME_RE, { error: (iss) => `repository name ${quote(iss.input)} is not valid: use letters, digits, _ . -` })
    .optional(),
  queue: queueSchema.prefault({}),
  retry: retrySchema.prefault({}),
  timeout: positiveDuration.default(30_000),
};

const headers = z.record(z.string().min(1), z.string());

function repositoryEntry(ctx: SchemaContext) {
  return z.strictObject({
    profefe: z
      .strictObject({ url, headers: headers.optional(), ...repositoryCommon, ...clientFields(ctx) })
      .optional(),
    directory: z
      .strictObject({
        path: z.string().min(1),
        retention: z.strictObject({ max_age: positiveDuration.optional(), max_size: size.optional() }).optional(),
        ...repositoryCommon,
      })
      .optional(),
    pyroscope: z
      .strictObject({
        url,
        tenant: z.string().min(1).optional(),
        headers: headers.optional(),
        // Pyroscope's own defaults (pkg/validation/limits.go); 0 turns a bound off, as there
        reject_older_than: duration.default(3_600_000).meta({ description: 'The server\'s validation.reject-older-than (default 1h): older profiles are dropped, not sent. 0s: no limit.' }),
        reject_newer_than: duration.default(600_000).meta({ description: 'The server\'s validation.reject-newer-than (default 10m): profiles further ahead are dropped, not sent. 0s: no limit.' }),
        max_label_names_per_series: z.int().min(0).default(30).meta({ description: 'The server\'s limit of the same name (default 30); a series with more is not sent. 0: no limit.' }),
        max_profile_size: size.default(4 * 1024 ** 2).meta({ description: 'The server\'s max_profile_size_bytes, uncompressed (default 4MiB); a larger profile is not sent.' }),
        max_profile_stacktrace_samples: z.int().min(0).default(16_000).meta({ description: 'The server\'s limit of the same name (default 16000); a profile with more samples is not sent. 0: no limit.' }),
        ...repositoryCommon,
        ...clientFields(ctx),
      })
      .optional(),
    s3: z
      .strictObject({
        bucket: z.string().min(1),
        prefix: z.string().default(''),
        region: z.string().min(1).optional(),
        endpoint: url.optional(),
        force_path_style: z.boolean().default(false),
        storage_class: z.string().min(1).optional(),
        ...repositoryCommon,
      })
      .optional(),
  });
}

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
    listen: listen.default('127.0.0.1:10101'),
    allowed_hosts: z
      .array(allowedHost)
      .default([])
      .meta({ description: 'Host names the status listener answers to besides IP addresses, localhost and the listen host (DNS rebinding protection). Case-insensitive; the port is not compared.' }),
    enable_reload: z.boolean().default(false).meta({ description: 'Allow POST /-/reload. SIGHUP and the config file watch reload either way.' }),
    basic_auth: z
      .strictObject({
        username: z.string().min(1, { error: 'username must not be empty' }),
        password_hash: z
          .string()
          .refine((h) => BCRYPT_RE.test(h), { error: 'password_hash is not a bcrypt hash ($2y$10$ and 53 more characters): make one with htpasswd -nBC 10 "" | tr -d \':\\n\'' })
          .transform((h) => new Secret(h))
          .optional(),
        password_hash_file: filePath(ctx).optional(),
      })
      .optional()
      .meta({ description: 'Ask for a user name and password on every path but /healthz, /-/healthy and /-/ready. The password is given as a bcrypt hash.' }),
    tls: z
      .strictObject({
        cert_file: filePath(ctx),
        key_file: filePath(ctx),
        client_ca_file: filePath(ctx).optional().meta({ description: 'Require a client certificate signed by this CA.' }),
      })
      .optional()
      .meta({ description: 'Serve https instead of http.' }),
  });
}

export function createConfigSchema(ctx: SchemaContext) {
  return z.strictObject({
    scrape: scrapeSchema(ctx).prefault({}),
    profiles: profilesSchema.default(DEFAULT_PROFILES),
    discovery: z.array(discoveryEntry(ctx)).default([]),
    overrides: z.array(overrideRule).default([]),
    repositories: z.array(repositoryEntry(ctx)).min(1, { error: 'list at least one repository, so profiles have somewhere to go' }),
    server: serverSchema(ctx).prefault({}),
    shard: z
      .strictObject({
        count: z.number().int().min(1, { error: 'shard count must be at least 1' }),
        index: z.number().int().min(0, { error: 'shard index must be 0 or more' }),
      })
      .optional(),
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
export type StaticConfig = NonNullable<DiscoveryEntry['static']>;
export type Ec2Config = NonNullable<DiscoveryEntry['ec2']>;
export type DockerConfig = NonNullable<DiscoveryEntry['docker']>;
export type OverrideRule = Config['overrides'][number];
export type RepositoryEntry = Config['repositories'][number];
export type ProfefeConfig = NonNullable<RepositoryEntry['profefe']>;
export type DirectoryConfig = NonNullable<RepositoryEntry['directory']>;
export type PyroscopeConfig = NonNullable<RepositoryEntry['pyroscope']>;
export type S3Config = NonNullable<RepositoryEntry['s3']>;
export type MatchValue = OverrideRule['match'][string];
export type ServerConfig = Config['server'];

/** The fields every provider block, static target and overrides: rule may set. */
export interface OverrideSettings {
  service?: string | undefined;
  labels?: Record<string, string> | undefined;
  port?: number | undefined;
  path?: string | undefined;
  scheme?: 'http' | 'https' | undefined;
  profiles?: string[] | undefined;
  interval?: number | undefined;
}

/** TLS and credentials for reaching targets, as a provider block or scrape: holds them. */
export interface ClientSettings {
  tls?: { ca_file?: string | undefined; cert_file?: string | undefined; key_file?: string | undefined; server_name?: string | undefined; insecure_skip_verify?: boolean | undefined } | undefined;
  bearer_token?: Secret | undefined;
  bearer_token_file?: string | undefined;
  basic_auth?: { username: string; password?: Secret | undefined; password_file?: string | undefined } | undefined;
}

export const PROVIDER_KINDS = ['static', 'ec2', 'docker'] as const;
export type ProviderKind = (typeof PROVIDER_KINDS)[number];
export const REPOSITORY_KINDS = ['profefe', 'directory', 'pyroscope', 's3'] as const;
export type RepositoryKind = (typeof REPOSITORY_KINDS)[number];
export { LABEL_NAME_RE };
