export { DiscoveryManager } from './manager.js';
export type { ApplySummary, DiscoveryProblem } from './manager.js';
export { discoverOnce } from './once.js';
export { DiscoveryError } from './provider.js';
export type { Provider, ProviderDeps, ProviderFactory } from './provider.js';
export { createProvider, providerKindOf } from './providers/index.js';
export { ProviderRunner } from './runner.js';
export type { RunnerState } from './runner.js';
