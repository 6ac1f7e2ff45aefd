import type { Metrics } from '../metrics.js';
import { fileExtensionOf } from '../profiles/profile.js';
import type { LastScrape, TargetJson, TargetsReport } from '../targets/index.js';
import { pprofRoutes, sendJson, sendText } from './server.js';
import type { Handler } from './server.js';
import type { Health } from './health.js';
import type { HeldProfile } from './last-profiles.js';
import { STATUS_PAGE_HTML } from './status-page.js';

/** The last scrape of one target × type, as /targets shows it. */
export interface LastScrapeJson extends LastScrape {
  /** Where to download this profile, while the daemon still holds it in memory. */
  readonly profile?: string;
}

/** /targets: the dry-run JSON plus, per target and type, the last scrape. */
export interface StatusReport extends TargetsReport {
  targets: (TargetJson & { last: Record<string, LastScrapeJson> })[];
}

/** A repository's delivery as /status shows it (times as ISO strings). */
export interface RepositoryStatusJson {
  readonly name: string;
  readonly kind: string;
  readonly queued: number;
  readonly queuedBytes: number;
  readonly oldestAgeMs: number;
  readonly lastSuccess?: string;
  readonly lastError?: { readonly time: string; readonly error: string; readonly permanent: boolean };
  /** Retryable failures in a row now. */
  readonly failedAttempts: number;
  /** While the queue backs off: when it sends again. */
  readonly retryAt?: string;
  /** It has profiles queued and has taken none for server.health.delivery_stall. */
  readonly stalled: boolean;
}

/** /status: the daemon itself, its health and its repositories' delivery. */
export interface DaemonStatusJson {
  readonly version: string;
  readonly node: string;
  /** Where the running config came from (a file path, or the embedded default), and when it was applied. */
  readonly config: { readonly source: string; readonly applied?: string };
  readonly started: string;
  readonly ready: boolean;
  readonly health: Health;
  readonly repositories: RepositoryStatusJson[];
}

/** What the status listener shows; the daemon provides it. */
export interface StatusSource {
  /** Config loaded and first discovery done. */
  readonly ready: boolean;
  readonly metrics: Metrics;
  report(): StatusReport;
  /** The judgement of /-/healthy (server.health). */
  health(): Health;
  /** /status: version, config source, health, repositories. */
  status(): DaemonStatusJson;
  /** The last good profile of a target × type, if still held. */
  lastProfile(targetId: string, type: string): HeldProfile | undefined;
}

export const LAST_PROFILE_PATH = '/targets/last-profile';

/** The link /targets and the status page give for a held profile (relative, so it works behind a path prefix). */
export function lastProfileLink(targetId: string, type: string): string {
  return `${LAST_PROFILE_PATH.slice(1)}?${new URLSearchParams({ target: targetId, type }).toString()}`;
}

/** /, /metrics, /healthz, /-/healthy, /-/ready, /targets, /status, the last-profile downloads and own /debug/pprof. */
export function statusRoutes(source: StatusSource): Map<string, Handler> {
  const routes = pprofRoutes();
  routes.set('/', (_req, res) => {
    res.setHeader('cache-control', 'no-store');
    sendText(res, 200, STATUS_PAGE_HTML, 'text/html; charset=utf-8');
  });
  routes.set('/healthz', (_req, res) => sendText(res, 200, 'ok\n'));
  routes.set('/-/healthy', (_req, res) => {
    const health = source.health();
    res.setHeader('cache-control', 'no-store');
    if (health.healthy) sendText(res, 200, 'ok\n');
    else sendText(res, 503, `unhealthy:\n${health.reasons.map((r) => `- ${r}\n`).join('')}`);
  });
  routes.set('/-/ready', (_req, res) =>
    source.ready ? sendText(res, 200, 'ready\n') : sendText(res, 503, 'not ready: the config is loading or discovery has not answered yet\n'),
  );
  routes.set('/metrics', async (_req, res) => sendText(res, 200, await source.metrics.registry.metrics(), source.metrics.registry.contentType));
  routes.set('/status', (_req, res) => {
    res.setHeader('cache-control', 'no-store');
    sendJson(res, 200, source.status());
  });
  routes.set('/targets', (_req, res) => {
    res.setHeader('cache-control', 'no-store');
    sendJson(res, 200, source.report());
  });
  routes.set(LAST_PROFILE_PATH, (_req, res, url) => {
    const target = url.searchParams.get('target') ?? '';
    const type = url.searchParams.get('type') ?? '';
    if (!target || !type) {
      sendText(res, 400, `give ?target=<id>&type=<type>, as the links in /targets do\n`);
      return;
    }
    const profile = source.lastProfile(target, type);
    if (!profile) {
      sendText(res, 404, `no ${type} profile of target ${target} is held in memory: it has not been scraped yet, its last scrape failed, or it was evicted to keep memory bounded (the repositories have every profile)\n`);
      return;
    }
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': profile.data.length,
      'content-disposition': `attachment; filename="${downloadName(profile)}"`,
      'cache-control': 'no-store',
    });
    res.end(profile.data);
  });
  return routes;
}

/** `{service}_{type}_{time}_{instance}.pb.gz`; a Go execution trace ends in `.trace`, as in the directory repository. */
function downloadName(p: HeldProfile): string {
  const stamp = new Date(p.time).toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const safe = (s: string): string => s.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 80) || '_';
  return `${safe(p.service)}_${safe(p.type)}_${stamp}_${safe(p.labels['instance'] ?? p.targetId.slice(0, 12))}${fileExtensionOf(p)}`;
}
