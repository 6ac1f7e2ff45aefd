import { createHash } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { Profile as Pprof } from 'pprof-format';
import { ExportProfilesServiceRequestSchema } from '../proto/gen/opentelemetry/proto/collector/profiles/v1development/profiles_service_pb.js';
import type { ExportProfilesServiceRequest } from '../proto/gen/opentelemetry/proto/collector/profiles/v1development/profiles_service_pb.js';
import type { AnyValueSchema, KeyValueSchema } from '../proto/gen/opentelemetry/proto/common/v1/common_pb.js';
import type {
  FunctionSchema,
  KeyValueAndUnitSchema,
  LocationSchema,
  MappingSchema,
  ProfileSchema,
  SampleSchema,
  StackSchema,
} from '../proto/gen/opentelemetry/proto/profiles/v1development/profiles_pb.js';

type AnyValue = MessageInitShape<typeof AnyValueSchema>;
type KeyValue = MessageInitShape<typeof KeyValueSchema>;
type KeyValueAndUnit = MessageInitShape<typeof KeyValueAndUnitSchema>;
type Profile = MessageInitShape<typeof ProfileSchema>;
type Sample = MessageInitShape<typeof SampleSchema> & { values: bigint[] };
import type { Labels } from '../profiles/profile.js';

// A pprof profile as an OTLP ExportProfilesServiceRequest, per
// opentelemetry-proto v1.11.0 (proto/opentelemetry/VERSION): one
// ProfilesDictionary for the request, whose tables each start with their
// zero value at index 0 ("the element at index 0 MUST be the zero value"),
// and one Profile per pprof sample type (a v1.11.0 Profile has one
// sample_type). The mapping is in docs/repositories/otlp.md.

/** What identifies the scrape a profile came from. */
export interface OtlpSource {
  readonly targetId: string;
  readonly service: string;
  /** The configured type (cpu, heap, fgprof …). */
  readonly type: string;
  readonly labels: Labels;
  /** The time the profile is filed under, ms since the epoch (ScrapedProfile.time). */
  readonly time: number;
}

/** The InstrumentationScope of every profile: this daemon, which turned pprof into OTLP. */
export interface OtlpScope {
  readonly name: string;
  readonly version: string;
}

/** The resource attribute of a target's service (OTel semantic conventions). */
export const SERVICE_NAME = 'service.name';
/** The profile attribute holding the configured type: heap and allocs share their sample types. */
export const PROFILE_TYPE_ATTRIBUTE = 'pprof.profile.type';
/** Where a mapping's build ID goes: Go's runtime/pprof writes the ELF NT_GNU_BUILD_ID note there. */
export const BUILD_ID_ATTRIBUTE = 'process.executable.build_id.gnu';

/**
 * Semantic-convention attributes that a target's labels also give, beside
 * the labels under their own names: backends that know the conventions
 * find them, and nothing of the label set is renamed or lost.
 */
const SEMCONV: Readonly<Record<string, string>> = {
  instance: 'service.instance.id',
  instance_id: 'host.id',
  instance_type: 'host.type',
  availability_zone: 'cloud.availability_zone',
  region: 'cloud.region',
  container_id: 'container.id',
  container_name: 'container.name',
  image: 'container.image.name',
};

const stringValue = (value: string): AnyValue => ({ value: { case: 'stringValue', value } });
const keyValue = (key: string, value: string): KeyValue => ({ key, value: stringValue(value) });

/** The resource attributes of a target: service.name, its labels, and their semantic-convention names. */
export function resourceAttributes(service: string, labels: Labels): KeyValue[] {
  const out = new Map<string, string>([[SERVICE_NAME, service]]);
  for (const [name, value] of Object.entries(labels)) if (!out.has(name)) out.set(name, value);
  for (const [name, value] of Object.entries(labels)) {
    const conv = SEMCONV[name];
    if (conv !== undefined && !out.has(conv)) out.set(conv, value);
  }
  if (labels['provider'] === 'ec2') {
    if (!out.has('cloud.provider')) out.set('cloud.provider', 'aws');
    if (!out.has('cloud.platform')) out.set('cloud.platform', 'aws_ec2');
  }
  return [...out].map(([k, v]) => keyValue(k, v));
}

const big = (n: number | bigint): bigint => (typeof n === 'bigint' ? n : BigInt(Math.trunc(n)));
const num = (n: number | bigint): number => Number(n);

/** A dictionary table that starts with its zero value and keeps one index per distinct key. */
class Table<T> {
  readonly items: T[];
  readonly #index = new Map<string, number>();
  constructor(zero: T) {
    this.items = [zero];
  }
  add(key: string, make: () => T): number {
    let i = this.#index.get(key);
    if (i === undefined) {
      i = this.items.length;
      this.items.push(make());
      this.#index.set(key, i);
    }
    return i;
  }
}

/** A 16-byte id of one profile of a scrape: the same for a retried export. */
function profileIdOf(source: OtlpSource, sampleTypeIndex: number): Uint8Array {
  return createHash('sha256').update(`${source.targetId}\0${source.type}\0${source.time}\0${sampleTypeIndex}`).digest().subarray(0, 16);
}

/**
 * The export request of one pprof profile. Samples whose value for a sample
 * type is 0 are left out of that type's profile (they say nothing there);
 * pprof samples that come to one OTLP identity (stack, attributes) are
 * combined by appending their values, as Sample's comment asks.
 */
export function toExportRequest(pprof: Pprof, source: OtlpSource, scope: OtlpScope): ExportProfilesServiceRequest {
  const str = pprof.stringTable.strings;
  const s = (i: number | bigint): string => str[num(i)] ?? '';
  const strings = new Table<string>('');
  const strIndex = (value: string): number => (value === '' ? 0 : strings.add(value, () => value));

  const attributes = new Table<KeyValueAndUnit>({ keyStrindex: 0, unitStrindex: 0 });
  // values are strings and integers only (pprof labels), which the key tells apart
  const attribute = (key: string, value: AnyValue, unit = ''): number => {
    const v = value.value;
    const shown = typeof v?.value === 'string' || typeof v?.value === 'bigint' ? v.value.toString() : '';
    const id = `${key}\0${v?.case ?? ''}\0${shown}\0${unit}`;
    return attributes.add(id, () => ({
      keyStrindex: strIndex(key),
      value,
      unitStrindex: strIndex(unit),
    }));
  };

  // mappings, functions and locations keep pprof's own identity (its ids); index 0 is the zero value
  const mappingIndex = new Map<string, number>();
  const mappings: MessageInitShape<typeof MappingSchema>[] = [
    { memoryStart: 0n, memoryLimit: 0n, fileOffset: 0n, filenameStrindex: 0, attributeIndices: [] },
  ];
  for (const m of pprof.mapping) {
    const buildId = s(m.buildId);
    mappingIndex.set(String(m.id), mappings.length);
    mappings.push({
      memoryStart: big(m.memoryStart),
      memoryLimit: big(m.memoryLimit),
      fileOffset: big(m.fileOffset),
      filenameStrindex: strIndex(s(m.filename)),
      attributeIndices: buildId === '' ? [] : [attribute(BUILD_ID_ATTRIBUTE, stringValue(buildId))],
    });
  }
  const functionIndex = new Map<string, number>();
  const functions: MessageInitShape<typeof FunctionSchema>[] = [
    { nameStrindex: 0, systemNameStrindex: 0, filenameStrindex: 0, startLine: 0n },
  ];
  for (const f of pprof.function) {
    functionIndex.set(String(f.id), functions.length);
    functions.push({
      nameStrindex: strIndex(s(f.name)),
      systemNameStrindex: strIndex(s(f.systemName)),
      filenameStrindex: strIndex(s(f.filename)),
      startLine: big(f.startLine),
    });
  }
  const locationIndex = new Map<string, number>();
  const locations: MessageInitShape<typeof LocationSchema>[] = [
    { mappingIndex: 0, address: 0n, lines: [], attributeIndices: [] },
  ];
  for (const l of pprof.location) {
    locationIndex.set(String(l.id), locations.length);
    locations.push({
      mappingIndex: mappingIndex.get(String(l.mappingId)) ?? 0,
      address: big(l.address),
      // pprof and OTLP both list a location's lines callee first, its caller last
      lines: l.line.map((line) => ({
        functionIndex: functionIndex.get(String(line.functionId)) ?? 0,
        line: big(line.line),
        column: big(line.column),
      })),
      attributeIndices: [],
    });
  }

  const stacks = new Table<MessageInitShape<typeof StackSchema>>({
    locationIndices: [],
  });
  // per pprof sample: its stack and attribute indexes, the same for every sample type
  const identities = pprof.sample.map((sample) => {
    const indices = sample.locationId.map((id) => locationIndex.get(String(id)) ?? 0);
    const stackIndex = stacks.add(indices.join(','), () => ({ locationIndices: indices }));
    const seen = new Set<string>();
    const attrs: number[] = [];
    // attribute_indices "MUST maintain the key uniqueness requirement": a repeated pprof label key keeps its first value
    for (const label of sample.label) {
      const key = s(label.key);
      if (key === '' || seen.has(key)) continue;
      seen.add(key);
      if (num(label.str) !== 0) attrs.push(attribute(key, stringValue(s(label.str))));
      else attrs.push(attribute(key, { value: { case: 'intValue', value: big(label.num) } }, s(label.numUnit)));
    }
    attrs.sort((a, b) => a - b);
    return { stackIndex, attrs, key: `${stackIndex}:${attrs.join(',')}` };
  });

  const ownNs = big(pprof.timeNanos ?? 0);
  // the profile's own time where it is the one the daemon files it under, else that time
  const timeUnixNano = ownNs > 0n && Math.abs(Number(ownNs / 1_000_000n) - source.time) <= 1 ? ownNs : BigInt(source.time) * 1_000_000n;
  const typeAttribute = attribute(PROFILE_TYPE_ATTRIBUTE, stringValue(source.type));
  const periodType = pprof.periodType;

  const profiles: Profile[] = pprof.sampleType.map((sampleType, t) => {
    const byIdentity = new Map<string, Sample>();
    for (let i = 0; i < pprof.sample.length; i++) {
      const value = big((pprof.sample[i] as (typeof pprof.sample)[number]).value[t] ?? 0);
      if (value === 0n) continue;
      const id = identities[i] as (typeof identities)[number];
      const same = byIdentity.get(id.key);
      if (same !== undefined) same.values.push(value);
      else {
        byIdentity.set(id.key, {
          stackIndex: id.stackIndex,
          attributeIndices: id.attrs,
          linkIndex: 0,
          values: [value],
          timestampsUnixNano: [],
        });
      }
    }
    return {
      sampleType: { typeStrindex: strIndex(s(sampleType.type)), unitStrindex: strIndex(s(sampleType.unit)) },
      samples: [...byIdentity.values()],
      timeUnixNano,
      durationNano: big(pprof.durationNanos ?? 0),
      ...(periodType !== undefined
        ? { periodType: { typeStrindex: strIndex(s(periodType.type)), unitStrindex: strIndex(s(periodType.unit)) } }
        : {}),
      period: big(pprof.period ?? 0),
      profileId: profileIdOf(source, t),
      droppedAttributesCount: 0,
      originalPayloadFormat: '',
      originalPayload: new Uint8Array(0),
      attributeIndices: [typeAttribute],
    };
  });

  return create(ExportProfilesServiceRequestSchema, {
    resourceProfiles: [
      {
        resource: { attributes: resourceAttributes(source.service, source.labels) },
        scopeProfiles: [{ scope: { name: scope.name, version: scope.version }, profiles }],
      },
    ],
    dictionary: {
      mappingTable: mappings,
      locationTable: locations,
      functionTable: functions,
      // the zero Link with its IDs at their full lengths, as the proto's comment asks
      linkTable: [{ traceId: new Uint8Array(16), spanId: new Uint8Array(8) }],
      stringTable: strings.items,
      attributeTable: attributes.items,
      stackTable: stacks.items,
    },
  });
}
