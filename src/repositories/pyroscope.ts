import type { Logger } from 'pino';
import { request } from 'undici';
import { DEFAULT_PROFILE_LIMITS } from '../config/index.js';
import type { ProfileLimits } from '../config/index.js';
import { openProfile } from '../profiles/decode.js';
import type { Deltas } from '../profiles/delta.js';
import { isTrace } from '../profiles/profile.js';
import type { ScrapedProfile } from '../profiles/profile.js';
import { createTargetClient } from '../http/index.js';
import { resultOfError, resultOfStatus } from './http-result.js';
import type { PyroscopeConfig } from './kinds/pyroscope.js';
import type { Prepared, Repository, SendResult } from './repository.js';
import { deltaStage } from './delta-stage.js';
import { traceSkipper } from './trace-skip.js';
import type { TraceNotice } from './trace-skip.js';
import type { DeltaRepositoryDeps } from './delta-stage.js';
import { pyroscopeLabels, targetLabelsProblem } from './pyroscope-labels.js';
import { readProfileNames, typeNamesOf } from '../profiles/names.js';
import type { ProfileNames } from '../profiles/names.js';
import { encodePushRequest, overPushLimits, profileId, sampleLabelGroups } from './pyroscope-push.js';
import type { PushLimits } from './pyroscope-push.js';
import { GO_PROFILE_NAMES, notTheSource, outsideIngestionWindow, profileNameOf } from './pyroscope-series.js';

export { pyroscopeLabelName, pyroscopeLabels } from './pyroscope-labels.js';

// Grafana Pyroscope (self-hosted or Grafana Cloud Profiles) through its push
// API: `POST {url}/push.v1.PusherService/Push`, a Connect unary call over
// HTTP/1.1 with a protobuf body (application/proto, not compressed). Each
// profile is one series whose labels travel as name/value pairs, so:
//   - the profile name (`__name__`) is set here, as Grafana Alloy's
//     pyroscope.scrape sets it: Go's own types get Pyroscope's names
//     (process_cpu, memory, block, mutex, goroutine), any other type its
//     configured name, whatever its samples look like (fgprof's samples look
//     like CPU; filed as process_cpu they would mix with the real CPU series).
//     The legacy /ingest endpoint guesses it from the sample types alone;
//   - service names and label values are sent as they are (UTF-8); /ingest's
//     `name=app{k=v}` syntax cannot carry `,`, `}` or `=` in values, nor most
//     characters in the service name;
//   - `__delta__="false"` tells Pyroscope that cumulative types arrive as
//     deltas already (computed here, see prepare()).
// It is also the API Grafana Alloy's pyroscope.write uses.

export const PUSH_PATH = '/push.v1.PusherService/Push';

export interface PyroscopeDeps extends DeltaRepositoryDeps {
  readonly logger?: Logger | undefined;
}

export interface PyroscopeRepository extends Repository {
  /** The transform stage: the delta against the previous scrape of the target and type (see Repository.prepare). */
  prepare(profile: ScrapedProfile): Promise<Prepared>;
  readonly deltas: Deltas;
  /** Whether it has said it takes no traces; carried over a reload, so it says so once per process. */
  readonly traceNotice: TraceNotice;
}

/** What a Go execution trace comes to here: Pyroscope holds pprof profiles only. */
const TRACES = {
  warning: 'Pyroscope cannot hold Go execution traces: this repository skips every trace (traces go only to profefe, directory and s3 repositories); said once',
  reason: 'a Go execution trace: Pyroscope holds pprof profiles only (traces go to profefe, directory and s3)',
};

export async function createPyroscopeRepository(name: string, config: PyroscopeConfig, deps: PyroscopeDeps = {}): Promise<PyroscopeRepository> {
  const client = await createTargetClient(config);
  const base = config.url.replace(/\/+$/, '');
  const headers: Record<string, string> = {
    ...config.headers,
    'content-type': 'application/proto',
    'connect-protocol-version': '1',
    ...(config.tenant !== undefined ? { 'x-scope-orgid': config.tenant } : {}),
    ...client.headers,
  };
  const previous = deps.previous as Partial<PyroscopeRepository> | undefined;
  // a baseline outlives whatever the queue may still hold for its series (queue.max_age), and an hour between scrapes
  const stage = deltaStage(name, config.queue.max_age, deps);
  const { deltas } = stage;
  const traceNotice = typeof previous?.traceNotice?.said === 'boolean' ? previous.traceNotice : { said: false };
  const olderThanMs = config.reject_older_than;
  const newerThanMs = config.reject_newer_than;
  let windowLoggedAt = -Infinity;
  const pushLimits: PushLimits = {
    maxLabelNamesPerSeries: config.max_label_names_per_series,
    maxProfileSize: config.max_profile_size,
    maxSamples: config.max_profile_stacktrace_samples,
  };
  const renamed = new Set<string>();
  const { logger, metrics } = deps;
  const limits = (): ProfileLimits => deps.profileLimits?.() ?? DEFAULT_PROFILE_LIMITS;

  const onRename = (from: string, to: string, reason: string): void => {
    const key = `${from}\0${to}`;
    if (renamed.has(key)) return;
    renamed.add(key);
    logger?.warn({ repository: name, label: from, sent_as: to, reason }, `label ${from} is sent to Pyroscope as ${to}: ${reason}`);
  };

  const skipTrace = traceSkipper(name, logger, TRACES, traceNotice);

  return {
    name,
    kind: 'pyroscope',
    deltas,
    traceNotice,

    async prepare(profile: ScrapedProfile): Promise<Prepared> {
      // before anything reads the bytes: a trace is not pprof
      if (isTrace(profile)) return skipTrace(profile);
      const now = Date.now();
      // no baseline is kept for what is never sent
      const unfit = targetLabelsProblem(profile.service, profile.labels, pushLimits.maxLabelNamesPerSeries);
      if (unfit !== undefined) return { status: 'skipped', reason: `target_labels: ${unfit}` };
      const goSeries = GO_PROFILE_NAMES[profile.type];
      const other = goSeries === undefined ? undefined : notTheSource(goSeries, profile);
      if (other !== undefined) return { status: 'skipped', reason: other };
      if (profile.delta === true) return { status: 'send', profile };
      return stage.prepare(profile, now);
    },

    async send(profile: ScrapedProfile, signal: AbortSignal): Promise<SendResult> {
      if (isTrace(profile)) return skipTrace(profile);
      let labels: [string, string][];
      let profileName: string;
      let opened;
      let names: ProfileNames;
      try {
        opened = openProfile(profile.data, limits());
        names = readProfileNames(opened.raw, opened.summary.counts.labels > 0);
        profileName = profileNameOf(profile.type, typeNamesOf(names), profile.delta === true, profile.url);
        labels = pyroscopeLabels(profileName, profile.service, profile.labels, onRename);
      } catch (err) {
        return { status: 'permanent', error: `not a pprof profile: ${(err as Error).message}` };
      }
      // a godeltaprof type is told apart by its samples only here; Go's own types were in prepare()
      const other = profile.delta === true && GO_PROFILE_NAMES[profile.type] === undefined ? notTheSource(profileName, profile) : undefined;
      if (other !== undefined) return { status: 'skipped', reason: other };
      // Pyroscope checks the profile's own TimeNanos, even where the daemon files it by the scrape time
      const timeMs = opened.summary.timeMs ?? profile.time;
      const now = Date.now();
      const outside = outsideIngestionWindow(timeMs, now, olderThanMs, newerThanMs);
      if (outside !== undefined) {
        metrics?.queueDropped.inc({ repository: name, reason: 'outside_ingestion_window' });
        if (now - windowLoggedAt >= 60_000) {
          windowLoggedAt = now;
          logger?.warn(
            { repository: name, target: profile.targetId, type: profile.type, profile_time: new Date(timeMs).toISOString(), reason: 'outside_ingestion_window' },
            `profile not sent: ${outside}; it is dropped (if the server's window differs, set reject_older_than/reject_newer_than on this repository)`,
          );
        }
        return { status: 'skipped', reason: `outside_ingestion_window: ${outside}` };
      }
      // the target's own labels fit (prepare() checked them); labels on samples add series labels too
      const fromSamples = sampleLabelGroups(names, new Set(labels.map(([n]) => n)));
      const over = overPushLimits(labels, opened.raw.length, opened.summary.sampleCount, pushLimits, fromSamples);
      if (over !== undefined) return { status: 'permanent', error: `not sent: ${over}` };
      const body = encodePushRequest(labels, profile.data, profileId(profile));
      const url = `${base}${PUSH_PATH}`;
      try {
        const res = await request(url, { method: 'POST', body, headers, dispatcher: client.dispatcher, signal });
        const text = res.statusCode >= 300 ? await res.body.text() : (await res.body.dump(), '');
        const retryAfter = res.headers['retry-after'];
        return resultOfStatus(res.statusCode, text, Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
      } catch (err) {
        return resultOfError(err, `POST ${url}`);
      }
    },

    close: () => client.close(),
  };
}
