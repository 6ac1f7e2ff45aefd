export { AddressRefusedError } from './address-guard.js';
export { clientSettingsFor, createTargetClient } from './clients.js';
export type { TargetClient, TargetClientSettings } from './clients.js';
