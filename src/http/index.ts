export { AddressRefusedError } from './address-guard.js';
export { clientSettingsFor, createTargetClient, KEEP_ALIVE_MS } from './clients.js';
export type { TargetClient, TargetClientSettings } from './clients.js';
