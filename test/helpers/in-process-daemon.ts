/**
 * A daemon in this process with its status listener, as `run` wires them
 * (the listener, the status routes, a Reloader on the config file), started
 * on `file`: for the operator tests that read its pages and metrics.
 */
import assert from 'node:assert/strict';
import { Daemon } from '../../src/daemon.js';
import type { ProviderFactory } from '../../src/discovery/index.js';
import { createMetrics } from '../../src/metrics.js';
import type { Metrics } from '../../src/metrics.js';
import { Reloader } from '../../src/reload.js';
import { StatusListener } from '../../src/server/listener.js';
import { statusRoutes } from '../../src/server/routes.js';
import { captureLogger } from './log.js';
import type { CapturedLogger } from './log.js';

export interface InProcessDaemon {
  readonly daemon: Daemon;
  readonly reloader: Reloader;
  readonly metrics: Metrics;
  /** The listener's base URL, `http://host:port` (no trailing slash). */
  readonly base: string;
  /** What the daemon logged, at the level asked or above. */
  readonly log: CapturedLogger;
  /** Closes the reloader, then stops the daemon (with the deadlines given, else its own). */
  stop(deadlines?: { scrapeDeadlineMs?: number; sendDeadlineMs?: number }): Promise<void>;
}

export interface InProcessDaemonOptions {
  /** The captured log's level (default error). */
  readonly level?: string;
  /** Node's default metrics in the registry (default true, as the daemon has them). */
  readonly defaultMetrics?: boolean;
  readonly configSource?: string;
  readonly providerFactory?: ProviderFactory;
}

/** Starts it on the config at `file`; the first apply must succeed. */
export async function startInProcessDaemon(file: string, options: InProcessDaemonOptions = {}): Promise<InProcessDaemon> {
  const log = captureLogger(options.level ?? 'error');
  const { logger } = log;
  const metrics = createMetrics(options.defaultMetrics === false ? { defaultMetrics: false } : {});
  const listener = new StatusListener(logger);
  const daemon = new Daemon({
    logger,
    metrics,
    listener,
    ...(options.configSource !== undefined ? { configSource: options.configSource } : {}),
    ...(options.providerFactory ? { providerFactory: options.providerFactory } : {}),
  });
  listener.addRoutes(statusRoutes(daemon));
  const reloader = new Reloader({ daemon, path: file, logger, metrics });
  const start = await reloader.reload('start');
  assert.equal(start.status, 'applied', JSON.stringify(start));
  return {
    daemon,
    reloader,
    metrics,
    base: `http://${daemon.serverAddress ?? ''}`,
    log,
    stop: async (deadlines) => {
      await reloader.close();
      await daemon.stop(deadlines);
    },
  };
}
