import type { StaticConfig } from '../../config/index.js';
import type { Discovered } from '../../targets/index.js';
import type { Provider } from '../provider.js';

/** The targets listed in the file: a fixed answer. */
export function createStaticProvider(config: StaticConfig, source: number): Provider {
  const found: Discovered[] = config.targets.map((t) => {
    if (typeof t === 'string') return { address: t, labels: {} };
    const { address, ...settings } = t;
    return { address, labels: {}, settings };
  });
  return {
    kind: 'static',
    source,
    refreshInterval: undefined,
    refresh: () => Promise.resolve(found),
  };
}
