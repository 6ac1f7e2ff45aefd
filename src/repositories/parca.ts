import { createClient } from '@connectrpc/connect';
import type { Logger } from 'pino';
import { DEFAULT_PROFILE_LIMITS } from '../config/index.js';
import type { ProfileLimits } from '../config/index.js';
import type { Metrics } from '../metrics.js';
import { openProfile } from '../profiles/decode.js';
import { readProfileNames, valueTypeStringsOf } from '../profiles/names.js';
import { isTrace } from '../profiles/profile.js';
import type { ScrapedProfile } from '../profiles/profile.js';
import { ProfileStoreService } from '../proto/gen/parca/profilestore/v1alpha1/profilestore_pb.js';
import { redactUrl } from '../redact.js';
import { Code, openGrpcChannel, resultOfGrpcError } from './grpc.js';
import type { CodeRule } from './grpc.js';
import type { ParcaConfig } from './kinds/parca.js';
import { parcaLabels, parcaProfileName, profileTypeProblem } from './parca-labels.js';
import { GO_PROFILE_NAMES, notTheSource } from './pyroscope-series.js';
import type { Repository, SendResult } from './repository.js';
import { traceSkipper } from './trace-skip.js';

// Parca through its native API, parca.profilestore.v1alpha1.
// ProfileStoreService/WriteRaw over gRPC, as Parca's own scraper writes
// (pkg/scrape/scrape.go, processScrapeResp): one series per profile, its
// labels (parca-labels.ts) and the profile as scraped (gzipped pprof; Parca
// inflates it). Parca takes cumulative types as scraped, as its scraper
// sends them: no delta here.

const TRACES = {
  warning: 'Parca cannot hold Go execution traces: this repository skips every trace; said once',
  reason: 'a Go execution trace: Parca holds pprof profiles only (traces go to profefe, directory and s3)',
};

/**
 * Parca answers a request it cannot take with INVALID_ARGUMENT (bad labels,
 * a profile that does not parse or validate); an ingestion failure comes as
 * UNKNOWN or INTERNAL and may pass. The codes that say the request itself,
 * or the client's rights, are wrong are permanent; the rest retryable.
 */
const PERMANENT: ReadonlySet<Code> = new Set([
  Code.InvalidArgument,
  Code.NotFound,
  Code.AlreadyExists,
  Code.PermissionDenied,
  Code.Unauthenticated,
  Code.FailedPrecondition,
  Code.OutOfRange,
  Code.Unimplemented,
]);
export const parcaGrpcRule: CodeRule = (code) => (PERMANENT.has(code) ? 'permanent' : 'retryable');

export interface ParcaDeps {
  readonly logger?: Logger | undefined;
  readonly metrics?: Metrics | undefined;
  readonly profileLimits?: (() => ProfileLimits) | undefined;
}

/** The base URL of a `url:` (host:port, http:// or https://) given `insecure`. */
export function parcaBaseUrl(url: string, insecure: boolean): string {
  if (/^https?:\/\//i.test(url)) return url.replace(/\/+$/, '');
  return `${insecure ? 'http' : 'https'}://${url}`;
}

export async function createParcaRepository(name: string, config: ParcaConfig, deps: ParcaDeps = {}): Promise<Repository> {
  const { logger } = deps;
  const limits = (): ProfileLimits => deps.profileLimits?.() ?? DEFAULT_PROFILE_LIMITS;
  const base = parcaBaseUrl(config.url, config.insecure);
  const channel = await openGrpcChannel({ baseUrl: base, client: config, headers: config.headers, gzip: false });
  const client = createClient(ProfileStoreService, channel.transport);
  const what = `gRPC ${redactUrl(base)} ProfileStoreService/WriteRaw`;
  const renamed = new Set<string>();

  const onRename = (from: string, to: string): void => {
    if (renamed.has(from)) return;
    renamed.add(from);
    logger?.warn({ repository: name, label: from, sent_as: to }, `label ${from} is sent to Parca as ${to}: Parca's own label of that name is set from the profile`);
  };

  const skipTrace = traceSkipper(name, logger, TRACES);

  return {
    name,
    kind: 'parca',

    async send(profile: ScrapedProfile, signal: AbortSignal): Promise<SendResult> {
      if (isTrace(profile)) return skipTrace(profile);
      // heap and allocs are both Parca's "memory": one of them feeds it (the same choice as Pyroscope's)
      const goSeries = GO_PROFILE_NAMES[profile.type];
      const other = goSeries === undefined ? undefined : notTheSource(goSeries, profile);
      if (other !== undefined) return { status: 'skipped', reason: other };
      const profileName = parcaProfileName(profile.type);
      try {
        const { raw } = openProfile(profile.data, limits());
        const problem = profileTypeProblem(profileName, valueTypeStringsOf(readProfileNames(raw, false)));
        if (problem !== undefined) return { status: 'permanent', error: `not sent: ${problem}` };
      } catch (err) {
        return { status: 'permanent', error: `not a pprof profile: ${(err as Error).message}` };
      }
      if (profile.sampleCount === 0) return { status: 'skipped', reason: 'the profile has no samples' };
      const labels = parcaLabels(profileName, profile.service, profile.labels, onRename);
      try {
        await client.writeRaw(
          {
            normalized: false,
            series: [{ labels: { labels: labels.map(([n, value]) => ({ name: n, value })) }, samples: [{ rawProfile: profile.data }] }],
          },
          { signal },
        );
        return { status: 'ok' };
      } catch (err) {
        return resultOfGrpcError(err, what, parcaGrpcRule, signal);
      }
    },

    close: async () => channel.close(),
  };
}
