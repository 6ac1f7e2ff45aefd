export { AddressRefusedError } from './address-guard.js';
export { authHeaders, clientSettingsFor, createTargetClient, KEEP_ALIVE_MS, tlsOptions } from './clients.js';
export type { TargetClient, TargetClientSettings } from './clients.js';
export { readBodyUpTo } from './read-body.js';
