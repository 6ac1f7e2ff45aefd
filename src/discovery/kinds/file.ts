import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { clientFields, positiveDuration, quote, size } from '../../config/fields.js';
import type { SchemaContext } from '../../config/fields.js';
import { relabelField } from '../../config/relabel.js';
import { overrideFields } from '../../config/target-settings.js';
import { defineProviderKind } from '../descriptor.js';

/**
 * Prometheus's rule for file_sd names (discovery/file/file.go patFileSDName):
 * a `*` only in the last path element, and a .json, .yml or .yaml name.
 */
const FILE_NAME_RE = /^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$/;

/** Targets one file or one http_sd answer may list: far above an inventory's, far below what would exhaust memory. */
export const DEFAULT_MAX_TARGETS = 25_000;
/** The largest file or answer read: a few thousand targets with labels are well under a MiB. */
export const DEFAULT_MAX_GROUPS_SIZE = 8 * 1024 ** 2;

export const maxTargets = z
  .number()
  .int()
  .min(1, { error: 'max_targets must be at least 1' })
  .default(DEFAULT_MAX_TARGETS)
  .meta({ description: 'The most targets one file (or answer) may list; a longer list is refused whole and the last good one kept.' });

function schema(ctx: SchemaContext) {
  return z.strictObject({
    files: z
      .array(
        z
          .string()
          .refine((f) => FILE_NAME_RE.test(f) && !/[?[\]]/.test(f.slice(0, f.lastIndexOf('/') + 1)), {
            error: (iss) => `file pattern ${quote(iss.input)} is not valid: name .json, .yml or .yaml files, with * only in the last part (like targets/*.json), as Prometheus's file_sd does`,
          })
          .transform((f) => (isAbsolute(f) ? f : resolve(ctx.baseDir, f))),
      )
      .min(1, { error: 'files must list at least one file or pattern' })
      .meta({ description: 'Files in Prometheus file_sd format (JSON or YAML); * in the last part of a path. Relative to the config file.' }),
    refresh: positiveDuration.default(5 * 60_000).meta({ description: 'Every file is read again this often; changes are seen sooner, by a watch on their folders.' }),
    max_file_size: size.default(DEFAULT_MAX_GROUPS_SIZE).meta({ description: 'A larger file is not read: its last good targets stay, and the log says so.' }),
    max_targets: maxTargets,
    ...overrideFields,
    ...relabelField,
    ...clientFields(ctx),
  }).meta({ description: 'Targets listed in files in Prometheus\'s file_sd format (JSON or YAML), as Ansible, Puppet or Terraform write them; watched, and read again every refresh.' });
}

export type FileConfig = z.output<ReturnType<typeof schema>>;

/** Targets listed in files, as Prometheus's file_sd reads them: what Ansible, Puppet or consul-template write. */
export const fileDiscovery = defineProviderKind({
  kind: 'file',
  schema,
  create: async (config, source, deps) => (await import('../providers/file.js')).createFileProvider(config, source, deps),
});
