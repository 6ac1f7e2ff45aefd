export { joinHostPort, parseAddress, parsePort } from './address.js';
export type { AddressResult, ParsedAddress } from './address.js';
export { buildTargets, describeTiming, shardOf, targetId } from './builder.js';
export { sanitizeLabelName } from './labels.js';
export type { BuildResult, Discovered, DroppedTarget, Target, TargetGroup, TargetProfile, Timing } from './types.js';
export { droppedJson, targetJson, targetsReport } from './report.js';
export type { DroppedJson, ErrorJson, TargetJson, TargetsReport } from './report.js';
