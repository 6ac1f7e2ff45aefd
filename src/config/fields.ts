import { accessSync, constants } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { redactUrl } from '../redact.js';
import { describeValue, isMap } from './issues.js';
import type { AddIssue, RawMap } from './issues.js';
import { Secret } from './secret.js';
import { DURATION_GRAMMAR, parseDuration, parseSize, SIZE_GRAMMAR } from './units.js';

// The field types the sections of the config file share: schema.ts builds the
// file from them, and each repository kind its own block.

export interface SchemaContext {
  /** Folder of the config file: relative credential and CA file paths resolve against it. */
  readonly baseDir: string;
  /** When false, *_file paths are not checked on disk (schema export). */
  readonly checkFiles: boolean;
}

export function quote(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

// What the JSON Schema (json-schema.ts) says of durations and sizes, for
// editors: the parser's own grammar (units.ts), and, where the transform
// refuses zero, a look-ahead that refuses it too. A size whose fraction rounds
// down to no byte at all (0.0001KiB) is the one text the pattern lets through
// and the transform refuses; a duration's pattern knows no minimum
// (`interval` wants 1s or more).
export const DURATION_TEXT = 'A duration: 250ms, 10s, 5m, 1h, 7d, or combined like 1h30m.';
export const SIZE_TEXT = 'A size in bytes, or with a unit: 512KiB, 64MiB, 10GiB (also KB, MB, GB).';
export const DURATION_PATTERN = `^${DURATION_GRAMMAR}$`;
/** Every number in it 0: `0s`, `00m0ms`. */
export const POSITIVE_DURATION_PATTERN = `^(?![0a-z]+$)${DURATION_GRAMMAR}$`;
/** Trimmed as the parser trims; no bytes: 0 or a fraction of a byte, or zeros before a unit. */
export const SIZE_PATTERN = `^(?!\\s*0+(?:\\.\\d+)?\\s*B?\\s*$)(?!\\s*0+(?:\\.0+)?\\s*[A-Za-z]+\\s*$)\\s*${SIZE_GRAMMAR}\\s*$`;
// patternErrorMessage: what yaml-language-server and VS Code say instead of
// quoting the pattern; JSON Schema validators ignore it.
/** The JSON Schema of a duration that must be longer than 0s (positiveDuration, interval). */
export const POSITIVE_DURATION_META = {
  pattern: POSITIVE_DURATION_PATTERN,
  patternErrorMessage: 'Not a duration longer than 0s: use a number and a unit, like 250ms, 10s, 5m, 1h, 7d, or combined like 1h30m.',
};

export const duration = z
  .string({ error: (iss) => `expected a duration like 10s or 5m, got ${describeValue(iss.input)}` })
  .transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `${quote(text)} is not a duration: use a number and a unit, like 250ms, 10s, 5m, 1h or 7d` });
      return z.NEVER;
    }
    return ms;
  })
  .meta({ description: DURATION_TEXT, pattern: DURATION_PATTERN, patternErrorMessage: 'Not a duration: use a number and a unit, like 250ms, 10s, 5m, 1h, 7d, or combined like 1h30m.' });

export const positiveDuration = duration.refine((ms) => ms > 0, { error: 'must be longer than 0s' }).meta(POSITIVE_DURATION_META);

export const size = z
  .union([z.string(), z.number()], { error: (iss) => `expected a size like 64MiB, got ${describeValue(iss.input)}` })
  .transform((text, ctx) => {
    const bytes = parseSize(text);
    if (bytes === undefined || bytes <= 0) {
      ctx.addIssue({ code: 'custom', message: `${quote(text)} is not a size: use a number and a unit, like 512KiB, 64MiB or 10GiB` });
      return z.NEVER;
    }
    return bytes;
  })
  // editors see what the transform takes: a whole number of bytes (1 or more) or the parser's text
  .meta({
    description: SIZE_TEXT,
    type: ['string', 'integer'],
    minimum: 1,
    maximum: Number.MAX_SAFE_INTEGER,
    pattern: SIZE_PATTERN,
    patternErrorMessage: 'Not a size: use a number of bytes above 0, or a number and a unit, like 512KiB, 64MiB or 10GiB (also KB, MB, GB).',
  });

export const secret = z.string().transform((v) => new Secret(v)).meta({ description: 'A secret. Prefer the *_file form; never printed.' });

// Credentials in a URL would be sent by no HTTP client here and shown by every
// log line: they are refused, as in static targets, and never quoted.
export const url = z.string().superRefine((v, ctx) => {
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

export function filePath(ctx: SchemaContext) {
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

export function tlsFields(ctx: SchemaContext) {
  return {
    ca_file: filePath(ctx).optional().meta({ description: 'CA certificates (PEM) to verify the peer with, instead of the system\'s.' }),
    cert_file: filePath(ctx).optional().meta({ description: 'Client certificate (PEM) to present, with key_file.' }),
    key_file: filePath(ctx).optional().meta({ description: 'The private key (PEM) of cert_file.' }),
    server_name: z.string().optional().meta({ description: 'The name the peer\'s certificate must hold (and the SNI sent), when it is not the host\'s.' }),
    insecure_skip_verify: z.boolean().optional().meta({ description: 'Accept any certificate from the peer: for tests, never in production.' }),
  };
}

export function basicAuth(ctx: SchemaContext) {
  return z.strictObject({
    username: z.string().meta({ description: 'The user name.' }),
    password: secret.optional().meta({ description: 'The password. Prefer password_file; never printed.' }),
    password_file: filePath(ctx).optional().meta({ description: 'A file holding the password, read at start and at every reload.' }),
  });
}

/** How to reach a peer: TLS and credentials, under scrape:, on every provider block, on HTTP repositories. */
export function clientFields(ctx: SchemaContext) {
  return {
    tls: z.strictObject(tlsFields(ctx)).optional().meta({ description: 'TLS to the peer over https. A provider block\'s tls overrides scrape.tls field by field.' }),
    bearer_token: secret.optional().meta({ description: 'Sent as Authorization: Bearer. Prefer bearer_token_file; never printed. One of bearer_token, bearer_token_file, basic_auth.' }),
    bearer_token_file: filePath(ctx).optional().meta({ description: 'A file holding the bearer token, read at start and at every reload.' }),
    basic_auth: basicAuth(ctx).optional().meta({ description: 'HTTP basic authentication: username and password or password_file.' }),
  };
}

/** TLS and credentials as a block with clientFields holds them. */
export type ClientSettings = z.output<z.ZodObject<ReturnType<typeof clientFields>>>;

/** The checks across clientFields, on the raw block; paths are relative to it. */
export function clientIssues(block: RawMap, add: AddIssue): void {
  const auth = ['bearer_token', 'bearer_token_file', 'basic_auth'].filter((k) => block[k] !== undefined);
  if (auth.length > 1) add([auth[1] ?? ''], `give one way to authenticate: ${auth.join(' and ')} are both set`);
  const basic = block['basic_auth'];
  if (isMap(basic)) {
    const pw = ['password', 'password_file'].filter((k) => basic[k] !== undefined);
    if (pw.length !== 1) add(['basic_auth'], 'basic_auth needs exactly one of password or password_file');
  }
  const tls = block['tls'];
  if (isMap(tls) && (tls['cert_file'] === undefined) !== (tls['key_file'] === undefined)) {
    add(['tls'], 'tls.cert_file and tls.key_file go together: give both or neither');
  }
}
