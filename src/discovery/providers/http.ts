import { request } from 'undici';
import type { HttpConfig } from '../../config/index.js';
import { createTargetClient } from '../../http/clients.js';
import { readBodyUpTo } from '../../http/read-body.js';
import { redactUrl } from '../../redact.js';
import type { Discovered } from '../../targets/index.js';
import { DiscoveryError } from '../provider.js';
import type { Provider, ProviderDeps } from '../provider.js';
import { mib } from './file.js';
import { parseTargetGroups } from './target-groups.js';

/** Prometheus's test of the answer's type (discovery/http/http.go matchContentType). */
const JSON_TYPE = /^application\/json(;\s*charset=("utf-8"|utf-8))?$/i;

/**
 * Prometheus's http_sd: GET the url, a 200 with application/json holding a
 * list of target groups (an empty list is an answer: no targets). Anything
 * else fails the refresh, which keeps the last good list and is counted.
 * Redirects are not followed: an inventory endpoint that redirects is
 * misconfigured or sends to a login page, and following would carry its
 * credentials to wherever the redirect points.
 */
export async function createHttpProvider(config: HttpConfig, source: number, _deps: ProviderDeps): Promise<Provider> {
  const where = `discovery[${source}].http`;
  const shown = redactUrl(config.url);
  const client = await createTargetClient(config.endpoint ?? {});
  const headers: Record<string, string> = {
    'user-agent': 'pprof-scraper',
    accept: 'application/json',
    // endpoints written for Prometheus may read it
    'x-prometheus-refresh-interval-seconds': String(config.refresh / 1000),
    ...lowerKeys(config.headers ?? {}),
    ...client.headers,
  };
  const fail = (what: string, code: string, cause?: unknown): DiscoveryError => new DiscoveryError(`${where}: ${shown} ${what}`, { code, cause });

  return {
    kind: 'http',
    source,
    directiveNoun: 'label',
    refreshInterval: config.refresh,
    async refresh(signal: AbortSignal): Promise<Discovered[]> {
      let res;
      try {
        res = await request(config.url, { method: 'GET', headers, dispatcher: client.dispatcher, signal });
      } catch (err) {
        throw fail(`could not be reached: ${(err as Error).message}`, (err as NodeJS.ErrnoException).code ?? 'RequestFailed', err);
      }
      try {
        if (res.statusCode >= 300 && res.statusCode < 400) {
          const location = res.headers['location'];
          throw fail(`answered HTTP ${res.statusCode}, a redirect${typeof location === 'string' ? ` to ${redactUrl(location)}` : ''}: redirects are not followed; set url to the final address`, 'Redirect');
        }
        if (res.statusCode !== 200) throw fail(`answered HTTP ${res.statusCode}: an http_sd endpoint answers 200`, `HTTP${res.statusCode}`);
        const type = String(res.headers['content-type'] ?? '').trim();
        if (!JSON_TYPE.test(type)) throw fail(`answered with content type ${JSON.stringify(type)}: an http_sd endpoint answers application/json`, 'ContentType');
        const length = Number(res.headers['content-length']);
        if (Number.isFinite(length) && length > config.max_answer_size) throw fail(`answered ${mib(length)}, over max_answer_size (${mib(config.max_answer_size)})`, 'TooLarge');
        const read = await readBodyUpTo(res.body, config.max_answer_size);
        if ('over' in read) throw fail(`answered more than max_answer_size (${mib(config.max_answer_size)})`, 'TooLarge');
        const text = read.bytes.toString('utf8');
        try {
          return parseTargetGroups(text, 'json', { name: shown, meta: { __meta_url: config.url } }, { maxTargets: config.max_targets });
        } catch (err) {
          throw fail(`gave an answer that is not a target group list: ${(err as Error).message.replace(`${shown}: `, '').replace(`${shown}:`, 'line ')}`, 'InvalidAnswer', err);
        }
      } finally {
        // whatever is left unread is dropped with the connection, not read to the end
        if (!res.body.readableEnded && !res.body.destroyed) {
          // undici reports its own abort of the body as an error: nobody else is listening for it
          res.body.on('error', () => undefined);
          res.body.destroy();
        }
      }
    },
    close: () => client.close(),
  };
}

function lowerKeys(headers: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
}
