import { z } from 'zod';
import { pathProblem } from '../targets/path.js';
import { duration, POSITIVE_DURATION_META, quote } from './fields.js';
import { describeValue } from './issues.js';
import { formatDuration } from './units.js';

// The settings of one target, which provider blocks, static targets and
// overrides: rules all accept: each discovery kind's block (discovery/kinds/)
// spreads overrideFields, and schema.ts builds overrides: from them.

export const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** No target × type is scraped more often than this, whoever sets the interval. */
export const MIN_INTERVAL_MS = 1000;

export const interval = duration.refine((ms) => ms >= MIN_INTERVAL_MS && Number.isSafeInteger(ms), {
  error: (iss) =>
    typeof iss.input === 'number' && iss.input < MIN_INTERVAL_MS
      ? `interval ${formatDuration(iss.input)} is below the ${formatDuration(MIN_INTERVAL_MS)} minimum: no target is scraped more than once a second`
      : 'interval is too long to count in milliseconds: give a shorter one',
}).meta(POSITIVE_DURATION_META);

/** The port of a target whose address, provider block and overrides give none. */
export const DEFAULT_PPROF_PORT = 6060;

export const port = z
  .number({ error: (iss) => `expected a port number, got ${describeValue(iss.input)}` })
  .refine((n) => Number.isInteger(n) && n >= 1 && n <= 65535, { error: (iss) => `port ${String(iss.input)} is out of range 1..65535` });

const scheme = z.enum(['http', 'https'], { error: (iss) => `scheme ${quote(iss.input)} is not http or https` });

// The same rule as a pprof.path tag: a query here would collide with the ?seconds=N the daemon adds.
export const urlPath = z.string().superRefine((p, ctx) => {
  const problem = pathProblem(p);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `path ${quote(p)} ${problem}` });
});

const labelValue = z
  .union([z.string(), z.number(), z.boolean()], { error: (iss) => `a label value must be a string, got ${describeValue(iss.input)}` })
  .transform((v) => `${v}`);

export const labelMap = z.record(
  z.string().regex(LABEL_NAME_RE, { error: (iss) => `label name ${quote(iss.input)} is not valid: use letters, digits and _ (not first)` }),
  labelValue,
);

/** The per-target settings: accepted by provider blocks, static targets and overrides: rules. */
export const overrideFields = {
  service: z.string().min(1, { error: 'service must not be empty' }).optional().meta({ description: 'The service name of the targets (the service of their profiles).' }),
  labels: labelMap.optional().meta({ description: 'Labels added to the targets\' profiles.' }),
  port: port.optional().meta({ description: 'The port of the targets\' pprof listener.' }),
  path: urlPath.optional().meta({ description: 'A path prefix that replaces the leading /debug/pprof of each type\'s path.' }),
  scheme: scheme.optional().meta({ description: 'http or https.' }),
  profiles: z.array(z.string()).min(1, { error: 'profiles must list at least one type' }).optional().meta({ description: 'The profile types to take (names under profiles:), instead of the enabled ones.' }),
  interval: interval.optional().meta({ description: 'How often the targets\' profiles are taken, instead of scrape.interval; at least 1s.' }),
};

/** The fields every provider block, static target and overrides: rule may set. */
export type OverrideSettings = z.output<z.ZodObject<typeof overrideFields>>;
