import type { IncomingMessage } from 'node:http';
import type { ContainerInfo } from 'dockerode';
import { CallSignal } from '../../abort.js';
import type { DockerConfig } from '../../config/index.js';
import type { Discovered } from '../../targets/index.js';
import { DiscoveryError } from '../provider.js';
import type { Provider, ProviderDeps } from '../provider.js';
import { createDockerApi } from './docker-api.js';
import { containerToDiscovered } from './docker-containers.js';
import { dockerError, resolveDockerEndpoint } from './docker-engine.js';

const LIST_TIMEOUT_MS = 30_000;

/** Container events after which the list of running containers or their addresses may differ. */
const CONTAINER_EVENTS = ['start', 'restart', 'unpause', 'pause', 'die', 'stop', 'destroy', 'rename'];
/** A running container joining or leaving a network changes its addresses. */
const NETWORK_EVENTS = ['connect', 'disconnect'];

/**
 * Running containers of one Docker engine, one target each. Docker events
 * make the runner refresh at once; `refresh` is the safety net.
 */
export async function createDockerProvider(config: DockerConfig, source: number, deps: ProviderDeps, env: NodeJS.ProcessEnv = process.env): Promise<Provider> {
  const where = `discovery[${source}].docker`;
  if (config.filters['status'] !== undefined) {
    throw new DiscoveryError(`${where}.filters.status: only running containers can be profiled, and they are the ones listed: remove the status filter`);
  }
  const endpoint = await resolveDockerEndpoint(config, env, where);
  const api = await createDockerApi(endpoint);
  const log = deps.logger.child({ provider: 'docker', source: where, engine: endpoint.description });
  const listFilters = JSON.stringify({ ...config.filters, status: ['running'] });
  // Only `label` means the same in the events API; name and network filters
  // there match other things, so those changes are caught by the refresh.
  const labelFilter = config.filters['label'];
  const eventFilters = JSON.stringify(
    labelFilter
      ? { type: ['container'], event: CONTAINER_EVENTS, label: labelFilter }
      : // network events carry the network's labels, not the container's: only unfiltered streams can use them
        { type: ['container', 'network'], event: [...CONTAINER_EVENTS, ...NETWORK_EVENTS] },
  );
  const addressOptions = { network: config.network, hostAddress: config.host_address };

  return {
    kind: 'docker',
    source,
    directiveNoun: 'label',
    refreshInterval: config.refresh,

    async refresh(signal: AbortSignal): Promise<Discovered[]> {
      const call = new CallSignal(signal, LIST_TIMEOUT_MS);
      const asked = performance.now();
      let list: unknown;
      try {
        list = await api.listContainers(listFilters, call.signal);
      } catch (err) {
        if (call.timedOut && !signal.aborted) {
          throw new DiscoveryError(`no answer from the Docker engine at ${endpoint.description} to the container list within ${LIST_TIMEOUT_MS / 1000}s`, { code: 'ETIMEDOUT', cause: err });
        }
        throw dockerError(err, endpoint.description, 'the container list');
      } finally {
        call.dispose();
      }
      if (!Array.isArray(list)) {
        throw new DiscoveryError(`${endpoint.description} answered the container list with something that is not a list: is it a Docker engine?`);
      }
      log.debug({ containers: list.length, ms: Math.round(performance.now() - asked) }, 'docker containers listed');
      return (list as ContainerInfo[])
        .map((c) => containerToDiscovered(c, addressOptions))
        .sort((a, b) => (a.labels['container_name'] ?? '').localeCompare(b.labels['container_name'] ?? ''));
    },

    async watch(signal: AbortSignal, changed: () => void): Promise<void> {
      let stream: IncomingMessage;
      try {
        stream = await api.events(eventFilters, signal);
      } catch (err) {
        if (signal.aborted) return;
        throw dockerError(err, endpoint.description, 'the event stream');
      }
      log.debug('docker event stream connected');
      // whatever happened between the last refresh and now was not streamed to us
      changed();
      await followEvents(stream, signal, endpoint.description, (event) => {
        log.debug({ type: event.Type, action: event.Action, id: event.Actor?.ID?.slice(0, 12) }, 'docker event');
        changed();
      }).catch((err: unknown) => {
        if (err instanceof DiscoveryError) throw err;
        throw dockerError(err, endpoint.description, 'the event stream');
      });
      if (!signal.aborted) throw new DiscoveryError(`the Docker engine at ${endpoint.description} closed the event stream`);
    },

    async close(): Promise<void> {
      api.close();
    },
  };
}

interface DockerEvent {
  readonly Type?: string;
  readonly Action?: string;
  readonly Actor?: { readonly ID?: string };
}

/** Reads the newline-separated JSON events until the stream ends (resolves) or breaks (rejects). */
function followEvents(stream: IncomingMessage, signal: AbortSignal, engine: string, onEvent: (e: DockerEvent) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let pending = '';
    let settled = false;
    const settle = (err?: unknown): void => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      if (err !== undefined) stream.destroy();
      if (err === undefined || signal.aborted) resolve();
      else reject(err instanceof Error ? err : new Error(`the event stream failed: ${JSON.stringify(err)}`));
    };
    const onAbort = (): void => settle();
    signal.addEventListener('abort', onAbort, { once: true });
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, nl).trim();
        pending = pending.slice(nl + 1);
        if (line === '') continue;
        let event: DockerEvent;
        try {
          event = JSON.parse(line) as DockerEvent;
        } catch {
          // not an event we can read; the refresh it triggers still sees the truth
          event = {};
        }
        onEvent(event);
      }
      // a single event is a few KiB at most; anything longer is not an event stream
      if (pending.length > 1024 ** 2) settle(new DiscoveryError(`the Docker engine at ${engine} sent an event stream line over 1 MiB: is it a Docker engine?`));
    });
    stream.once('end', () => settle());
    stream.once('close', () => settle());
    stream.once('error', (err: unknown) => settle(err));
    if (signal.aborted) settle();
  });
}
