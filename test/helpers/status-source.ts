/** A status source for tests of the status listener alone: no daemon behind it. */
import { createMetrics } from '../../src/metrics.js';
import type { DaemonStatusJson, StatusSource } from '../../src/server/routes.js';
import type { Health } from '../../src/server/health.js';

/** Ready, healthy, no targets and no repositories; `overrides` replaces any part. */
export function staticStatusSource(overrides: Partial<StatusSource> = {}): StatusSource {
  const health: Health = { healthy: true, reasons: [] };
  const status: DaemonStatusJson = { version: '0.0.0-test', node: process.version, config: { source: '<test>' }, started: new Date(0).toISOString(), ready: true, health, repositories: [] };
  return {
    ready: true,
    metrics: createMetrics({ defaultMetrics: false }),
    report: () => ({ targets: [], dropped: [], errors: [] }),
    lastProfile: () => undefined,
    health: () => health,
    status: () => status,
    ...overrides,
  };
}
