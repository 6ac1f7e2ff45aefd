import { Daemon } from '../daemon.js';
import { createLogger } from '../log.js';
import type { Logger } from '../log.js';
import { ConfigLoadError, loadConfig, logConfigErrors } from './common.js';

export interface RunOptions {
  readonly config?: string | undefined;
  readonly logLevel: string;
}

/**
 * `pprof-scraper run`: the daemon, in this very process, so signals reach it.
 * SIGTERM or SIGINT stop it cleanly (exit 0); a second one exits at once.
 * SIGHUP reloads the config file.
 */
export async function runCommand(options: RunOptions): Promise<number> {
  const logger = createLogger({ level: options.logLevel, stream: 'stdout' });
  let loaded;
  try {
    loaded = await loadConfig(options.config);
  } catch (err) {
    if (!(err instanceof ConfigLoadError)) throw err;
    logConfigErrors(logger, err);
    logger.fatal({ errors: err.errors.length }, 'the config is not valid; not starting');
    return 1;
  }
  const daemon = new Daemon({ logger });
  try {
    await daemon.apply(loaded);
  } catch (err) {
    logger.fatal({ error: err instanceof Error ? err.message : String(err) }, 'could not start');
    await daemon.stop({ scrapeDeadlineMs: 0, sendDeadlineMs: 0 }).catch(() => undefined);
    return 1;
  }
  logger.info({ config: loaded.source, targets: daemon.report().targets.length, listen: daemon.serverAddress }, 'pprof-scraper running');

  let reloading = Promise.resolve();
  const reload = (): void => {
    reloading = reloading.then(() => reloadOnce(daemon, options.config, logger));
  };

  return new Promise<number>((resolve) => {
    let stopping = false;
    const onStop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      stopping = true;
      logger.info({ signal }, 'stopping: finishing in-flight scrapes and handing profiles over');
      daemon
        .stop()
        .then(() => {
          logger.info('stopped');
          resolve(0);
        })
        .catch((err: unknown) => {
          logger.error({ error: err instanceof Error ? err.message : String(err) }, 'error while stopping');
          resolve(1);
        });
    };
    process.on('SIGTERM', onStop);
    process.on('SIGINT', onStop);
    process.on('SIGHUP', () => {
      logger.info({ signal: 'SIGHUP' }, 'reloading the config');
      reload();
    });
  });
}

async function reloadOnce(daemon: Daemon, path: string | undefined, logger: Logger): Promise<void> {
  try {
    const loaded = await loadConfig(path);
    const report = await daemon.apply(loaded);
    logger.info({ ...report }, 'config reloaded');
  } catch (err) {
    if (err instanceof ConfigLoadError) {
      logConfigErrors(logger, err);
      logger.error({ errors: err.errors.length }, 'reload refused: the new config is not valid; running on the old one');
      return;
    }
    logger.error({ error: err instanceof Error ? err.message : String(err) }, 'reload failed; running on the old config');
  }
}
