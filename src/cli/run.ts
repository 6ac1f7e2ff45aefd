import { Daemon } from '../daemon.js';
import { createLogger } from '../log.js';
import type { LogFormat } from '../log.js';
import { reloadRoute, Reloader } from '../reload.js';
import type { ConfigWatcher } from '../reload.js';
import { StatusListener } from '../server/listener.js';
import { statusRoutes } from '../server/routes.js';
import { choiceSource, chooseConfig, describeChoice } from './config-source.js';

export interface RunOptions {
  /** --config; without it, chooseConfig decides. */
  readonly config?: string | undefined;
  readonly logLevel: string;
  readonly logFormat?: LogFormat | undefined;
  /** Reload when the config file changes (default true). */
  readonly watchConfig?: boolean;
}

/** After a clean stop, a handle someone forgot must not keep the process up. */
const EXIT_GRACE_MS = 2_000;

/**
 * `pprof-scraper run`: the daemon, in this very process, so signals reach it,
 * and its status listener (the daemon's status routes and POST /-/reload).
 * SIGTERM or SIGINT stop it cleanly (exit 0); a second one exits at once.
 * SIGHUP, a change to the config file and, with server.enable_reload, POST
 * /-/reload reload the config.
 */
export async function runCommand(options: RunOptions): Promise<number> {
  const logger = createLogger({ level: options.logLevel, stream: 'stdout', format: options.logFormat });
  const choice = chooseConfig(options.config);
  // before the load, so that whatever the load says is read against the right file
  logger.info({ config: choice.path ?? '<embedded default>', from: choice.from }, `using ${describeChoice(choice)}`);
  const listener = new StatusListener(logger);
  const daemon = new Daemon({ logger, listener, configSource: choiceSource(choice) });
  const reloader = new Reloader({ daemon, path: choice.path, logger, metrics: daemon.metrics });
  listener.addRoutes(statusRoutes(daemon));
  listener.addRoutes(new Map([['POST /-/reload', reloadRoute(reloader)]]));
  let watcher: ConfigWatcher | undefined;

  return new Promise<number>((resolve) => {
    let stopping = false;
    const finish = (code: number): void => {
      resolve(code);
      setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
    };
    const onStop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, 'stopping: finishing in-flight scrapes and handing profiles over');
      watcher?.close();
      reloader
        .close()
        .then(() => daemon.stop())
        .then(() => {
          logger.info('stopped');
          finish(0);
        })
        .catch((err: unknown) => {
          logger.error({ error: err instanceof Error ? err.message : String(err) }, 'error while stopping');
          finish(1);
        });
    };
    // Installed before the start, so a signal during it is handled, not fatal.
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
    process.on('SIGHUP', () => {
      logger.info({ signal: 'SIGHUP' }, 'reloading the config');
      void reloader.reload('signal');
    });

    void (async () => {
      const started = await reloader.reload('start');
      if (started.status !== 'applied') {
        stopping = true;
        await reloader.close();
        await daemon.stop({ scrapeDeadlineMs: 0, sendDeadlineMs: 0 }).catch(() => undefined);
        finish(1);
        return;
      }
      if (stopping) return;
      if (choice.path !== undefined && options.watchConfig !== false) watcher = reloader.watch();
      // no target count here: providers answer after the start ('first discovery round done' gives it)
      logger.info({ config: daemon.loaded?.source, listen: daemon.serverAddress, watching: watcher !== undefined }, 'pprof-scraper running');
    })();
  });
}
