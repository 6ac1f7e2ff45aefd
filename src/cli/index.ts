#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
import { checkCommand } from './check.js';
import { CONFIG_ENV, SYSTEM_CONFIG } from './config-source.js';
import { runCommand } from './run.js';
import { schemaCommand } from './schema.js';
import { targetsCommand } from './targets.js';
import { versionText } from '../build-info.js';
import { parseDuration } from '../config/index.js';
import { LOG_FORMATS } from '../log.js';
import type { LogFormat } from '../log.js';
import { redactUrl } from '../redact.js';

// The AWS SDK (EC2 discovery, S3) prints a Node-version notice on Node 20 on
// its own stdout; this is its documented switch. An operator's own setting wins.
process.env['AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED'] ??= 'true';

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

function durationArg(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0) throw new InvalidArgumentError('use a duration like 30s or 2m');
  return ms;
}

const program = new Command()
  .name('pprof-scraper')
  .description('Finds pprof targets (static, EC2, Docker), scrapes their profiles on a schedule, and ships them to profefe, Pyroscope, S3 or a directory.')
  .version(versionText(), '-V, --version', 'print the version, the commit it was built from and the Node version')
  .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
  .addOption(new Option('--log-format <format>', 'log lines as JSON or logfmt (ts=… level=info msg=…); default: JSON, readable lines on a terminal').choices(LOG_FORMATS))
  .showHelpAfterError('(run with --help for usage)');

const configOption = (): Option =>
  new Option('-c, --config <file>', `config file (YAML); without it, $${CONFIG_ENV}, else ${SYSTEM_CONFIG} if it exists, else the embedded default (the daemon profiles itself into ./profiles)`);

let exitCode = 0;

program
  .command('run', { isDefault: false })
  .description('run the daemon (logs as JSON lines on stdout; SIGHUP or a change to the config file reloads, and POST /-/reload with server.enable_reload; SIGTERM stops)')
  .addOption(configOption())
  .addOption(new Option('--no-watch-config', 'do not reload when the config file changes (SIGHUP still does, and POST /-/reload with server.enable_reload)'))
  .action(async (opts: { config?: string; watchConfig: boolean }) => {
    const { logLevel, logFormat } = program.opts<{ logLevel: string; logFormat?: LogFormat }>();
    exitCode = await runCommand({ config: opts.config, logLevel, logFormat, watchConfig: opts.watchConfig });
  });

program
  .command('targets')
  .description('dry run: list the targets the daemon would scrape, the dropped ones and why, and provider errors; scrapes nothing. Exit 0, 2 if a provider failed, 1 on a bad config')
  .addOption(configOption())
  .addOption(new Option('-o, --output <format>', 'json or table').choices(['json', 'table']).default('table'))
  .addOption(new Option('--timeout <duration>', 'how long discovery may take').argParser(durationArg).default(120_000, '2m'))
  .action(async (opts: { config?: string; output: string; timeout: number }) => {
    const { logLevel, logFormat } = program.opts<{ logLevel: string; logFormat?: LogFormat }>();
    exitCode = await targetsCommand({ config: opts.config, output: opts.output, timeout: opts.timeout, logLevel, logFormat });
  });

program
  .command('check')
  .description('validate a config file; exit 0 if valid, 1 with every error (file:line:column) if not')
  .addOption(configOption())
  .action(async (opts: { config?: string }) => {
    exitCode = await checkCommand({ config: opts.config });
  });

program
  .command('schema')
  .description('print the JSON Schema of the config file, for editors')
  .action(() => {
    exitCode = schemaCommand();
  });

program.parseAsync(process.argv).then(
  () => {
    process.exitCode = exitCode;
  },
  (err: unknown) => {
    process.stderr.write(`pprof-scraper: ${redactUrl(err instanceof Error ? err.stack ?? err.message : String(err))}\n`);
    process.exitCode = 1;
  },
);
