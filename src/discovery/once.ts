import type { Logger } from 'pino';
import type { DiscoveryEntry } from '../config/index.js';
import type { TargetGroup } from '../targets/index.js';
import type { DiscoveryProblem } from './manager.js';
import { DiscoveryError } from './provider.js';
import type { ProviderFactory } from './provider.js';
import { createProvider, providerKindOf } from './factory.js';

/**
 * One refresh of every provider, as the dry run needs it: the same providers
 * and the same refresh() as the daemon, without the loops.
 */
export async function discoverOnce(
  entries: readonly DiscoveryEntry[],
  deps: { logger: Logger; timeoutMs: number; factory?: ProviderFactory },
): Promise<{ groups: TargetGroup[]; problems: DiscoveryProblem[] }> {
  const factory = deps.factory ?? createProvider;
  const partial: TargetGroup[] = [];
  const results = await Promise.all(
    entries.map(async (entry, source): Promise<TargetGroup | DiscoveryProblem> => {
      const kind = providerKindOf(entry);
      const signal = AbortSignal.timeout(deps.timeoutMs);
      try {
        const provider = await factory(entry, source, { logger: deps.logger });
        try {
          try {
            const targets = await provider.refresh(signal);
            return { source, provider: kind, directiveNoun: provider.directiveNoun, targets };
          } catch (err) {
            // a failure that still carries an answer: its targets and its error both show
            if (err instanceof DiscoveryError && err.answer !== undefined && !signal.aborted) partial.push({ source, provider: kind, directiveNoun: provider.directiveNoun, targets: err.answer });
            throw err;
          }
        } finally {
          await provider.close?.();
        }
      } catch (err) {
        const message = signal.aborted ? `no answer within ${Math.round(deps.timeoutMs / 1000)}s` : err instanceof Error ? err.message : String(err);
        return { provider: kind, source, error: message };
      }
    }),
  );
  const groups: TargetGroup[] = [...partial];
  const problems: DiscoveryProblem[] = [];
  for (const r of results) {
    if ('error' in r) problems.push(r);
    else groups.push(r);
  }
  // in the order of the entries, as the daemon builds them
  groups.sort((a, b) => a.source - b.source);
  return { groups, problems };
}
