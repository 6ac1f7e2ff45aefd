/**
 * A loopback server that answers the EC2 Query API as EC2 does: form-encoded
 * POSTs (Action, Version, Filter.N.Name / Filter.N.Value.M, MaxResults,
 * NextToken), XML answers (reservationSet / instancesSet / tagSet, nextToken)
 * and EC2 error documents with EC2's HTTP statuses. The region of a request is
 * read from its SigV4 credential scope, as a real regional endpoint would
 * (a path prefix `/<region>/` also works), so one server covers several
 * regions and every request must be signed.
 *
 * It records what clients actually sent, and fails on cue: `fail()` scripts
 * the next calls (403 UnauthorizedOperation, 503 RequestLimitExceeded, a
 * truncated XML body, a dropped connection). It also answers STS AssumeRole
 * (point AWS_ENDPOINT_URL_STS at it) with credentials whose key id names the
 * role, so a test sees which credentials signed each EC2 call.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export const EC2_NAMESPACE = 'http://ec2.amazonaws.com/doc/2016-11-15/';

export interface FakeInstance {
  readonly id: string;
  readonly state?: 'pending' | 'running' | 'shutting-down' | 'terminated' | 'stopping' | 'stopped';
  readonly type?: string;
  readonly az?: string;
  readonly imageId?: string;
  readonly vpcId?: string;
  readonly subnetId?: string;
  /** `null` leaves the field out of the answer (an instance without it). */
  readonly privateIp?: string | null;
  readonly publicIp?: string | null;
  readonly privateDns?: string | null;
  readonly publicDns?: string | null;
  readonly ipv6?: string | null;
  readonly tags?: Readonly<Record<string, string>>;
  /** Instances sharing a reservation id are answered in one reservationSet item. */
  readonly reservationId?: string;
}

/** One request as it arrived. */
export interface RecordedRequest {
  readonly region: string | undefined;
  readonly action: string | undefined;
  readonly version: string | undefined;
  /** Filter name → values, in the order sent. */
  readonly filters: Readonly<Record<string, readonly string[]>>;
  readonly maxResults: number | undefined;
  readonly nextToken: string | undefined;
  readonly instanceIds: readonly string[];
  readonly params: Readonly<Record<string, string>>;
  readonly userAgent: string | undefined;
  readonly signed: boolean;
  /** The access key id the request was signed with. */
  readonly accessKeyId: string | undefined;
  /** `ec2` or `sts`, from the signature's scope. */
  readonly service: string | undefined;
  /** What the fake answered: HTTP status, and the instances in the page when it was one. */
  status: number;
  instances: number;
}

export type Failure =
  | { readonly kind: 'error'; readonly status: number; readonly code: string; readonly message?: string }
  /** 200 with an XML body cut short. */
  | { readonly kind: 'malformed' }
  /** Drops the connection without an answer. */
  | { readonly kind: 'reset' };

export const FAILURES = {
  unauthorized: { kind: 'error', status: 403, code: 'UnauthorizedOperation', message: 'You are not authorized to perform this operation.' },
  throttled: { kind: 'error', status: 503, code: 'RequestLimitExceeded', message: 'Request limit exceeded.' },
  unavailable: { kind: 'error', status: 503, code: 'Unavailable', message: 'The server is overloaded and can\'t handle the request.' },
  internal: { kind: 'error', status: 500, code: 'InternalError', message: 'An internal error has occurred.' },
  authFailure: { kind: 'error', status: 401, code: 'AuthFailure', message: 'AWS was not able to validate the provided access credentials' },
  malformed: { kind: 'malformed' },
  reset: { kind: 'reset' },
} as const satisfies Record<string, Failure>;

interface ScriptedFailure {
  readonly failure: Failure;
  remaining: number;
  readonly region: string | undefined;
  readonly action: string;
  /** Only calls that carry a NextToken (a later page) fail. */
  readonly laterPagesOnly: boolean;
}

export interface Ec2FakeOptions {
  /** Instances per page when the request sets no MaxResults (EC2 pages on its own too). */
  readonly defaultPageSize?: number;
  /** Keep every request (true) or only count them: a benchmark sends thousands. */
  readonly record?: boolean;
}

export interface Ec2Fake {
  /** `http://127.0.0.1:PORT`: give it as the `endpoint`. */
  readonly url: string;
  /** The endpoint that answers for one region whatever the signature says. */
  endpointFor(region: string): string;
  setInstances(region: string, instances: readonly FakeInstance[]): void;
  instances(region: string): readonly FakeInstance[];
  /** Fails the next `times` matching calls (default 1), then answers normally again. */
  fail(failure: Failure, options?: { times?: number; region?: string; action?: string; laterPagesOnly?: boolean }): void;
  /** Forgets scripted failures that have not happened yet. */
  clearFailures(): void;
  readonly requests: RecordedRequest[];
  /** Requests received, recorded or not. */
  readonly count: number;
  /** Called for each request before it is answered (to change instances between pages). */
  onRequest: ((request: RecordedRequest) => void) | undefined;
  close(): Promise<void>;
}

const FILTER_NAME = /^Filter\.(\d+)\.Name$/;
const FILTER_VALUE = /^Filter\.(\d+)\.Value\.(\d+)$/;
const INSTANCE_ID = /^InstanceId\.(\d+)$/;
const SCOPE = /Credential=([^/]+)\/\d{8}\/([^/]+)\/([a-z0-9]+)\/aws4_request/;

export async function startEc2Fake(options: Ec2FakeOptions = {}): Promise<Ec2Fake> {
  const regions = new Map<string, { instances: readonly FakeInstance[]; xml: Map<string, string> }>();
  const failures: ScriptedFailure[] = [];
  const requests: RecordedRequest[] = [];
  const defaultPageSize = options.defaultPageSize ?? 1000;
  const record = options.record ?? true;
  let count = 0;

  const regionOf = (name: string): { instances: readonly FakeInstance[]; xml: Map<string, string> } => {
    let r = regions.get(name);
    if (!r) {
      r = { instances: [], xml: new Map() };
      regions.set(name, r);
    }
    return r;
  };

  const fake: Ec2Fake = {
    url: '',
    endpointFor: (region) => `${fake.url}/${region}/`,
    setInstances(region, instances) {
      regions.set(region, { instances: [...instances], xml: new Map() });
    },
    instances: (region) => regions.get(region)?.instances ?? [],
    fail(failure, o = {}) {
      failures.push({ failure, remaining: o.times ?? 1, region: o.region, action: o.action ?? 'DescribeInstances', laterPagesOnly: o.laterPagesOnly ?? false });
    },
    clearFailures() {
      failures.length = 0;
    },
    requests,
    get count() {
      return count;
    },
    onRequest: undefined,
    close: () => closeServer(server),
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req);
    count++;
    const params = Object.fromEntries(new URLSearchParams(req.method === 'POST' ? body : (req.url ?? '').split('?')[1] ?? ''));
    const pathRegion = /^\/([a-z]{2}(?:-[a-z]+)+-\d+)\/?/.exec(req.url ?? '')?.[1];
    const auth = req.headers.authorization;
    const scope = auth ? SCOPE.exec(auth) : null;
    const recorded = parseRequest(params, pathRegion ?? scope?.[2], req.headers['user-agent'], scope?.[1], scope?.[3]);
    if (record) requests.push(recorded);
    fake.onRequest?.(recorded);

    const answer = (status: number, xml: string): void => {
      recorded.status = status;
      res.writeHead(status, { 'content-type': 'text/xml;charset=UTF-8', 'content-length': Buffer.byteLength(xml), 'x-amzn-requestid': randomUUID() });
      res.end(xml);
    };

    if (!recorded.signed) return answer(401, errorXml('MissingAuthenticationToken', 'Request is missing Authentication Token'));
    if (recorded.region === undefined) return answer(401, errorXml('AuthFailure', 'The request signature names no region this endpoint serves.'));

    const scripted = failures.find(
      (f) => f.remaining > 0 && f.action === recorded.action && (f.region === undefined || f.region === recorded.region) && (!f.laterPagesOnly || recorded.nextToken !== undefined),
    );
    if (scripted) {
      scripted.remaining--;
      if (scripted.remaining === 0) failures.splice(failures.indexOf(scripted), 1);
      const f = scripted.failure;
      if (f.kind === 'reset') {
        recorded.status = 0;
        req.socket.destroy();
        return;
      }
      if (f.kind === 'malformed') {
        const whole = describeInstancesXml([], undefined);
        return answer(200, `${whole.slice(0, whole.length >> 1)}<reservationSet><item><instancesSet><item><instanceId>i-`);
      }
      return answer(f.status, recorded.service === 'sts' ? stsErrorXml(f.code, f.message ?? f.code) : errorXml(f.code, f.message ?? f.code));
    }

    switch (recorded.action) {
      case 'DescribeInstances':
        return describeInstances(recorded, regionOf(recorded.region), defaultPageSize, answer);
      case 'AssumeRole':
        return answer(200, assumeRoleXml(recorded.params));
      case 'DescribeAvailabilityZones':
        return answer(200, availabilityZonesXml(recorded.region, regionOf(recorded.region).instances));
      default:
        return answer(400, errorXml('InvalidAction', `The action ${recorded.action ?? '(none)'} is not valid for this web service.`));
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/xml' });
      res.end(errorXml('InternalError', err instanceof Error ? err.message : String(err)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  (fake as { url: string }).url = `http://127.0.0.1:${port}`;
  return fake;
}

function parseRequest(params: Record<string, string>, region: string | undefined, userAgent: string | undefined, accessKeyId: string | undefined, service: string | undefined): RecordedRequest {
  const names = new Map<number, string>();
  const values = new Map<number, [number, string][]>();
  const ids: [number, string][] = [];
  for (const [key, value] of Object.entries(params)) {
    let m = FILTER_NAME.exec(key);
    if (m) {
      names.set(Number(m[1]), value);
      continue;
    }
    m = FILTER_VALUE.exec(key);
    if (m) {
      const n = Number(m[1]);
      values.set(n, [...(values.get(n) ?? []), [Number(m[2]), value]]);
      continue;
    }
    m = INSTANCE_ID.exec(key);
    if (m) ids.push([Number(m[1]), value]);
  }
  const filters: Record<string, string[]> = {};
  for (const n of [...names.keys()].sort((a, b) => a - b)) {
    const name = names.get(n) as string;
    filters[name] = (values.get(n) ?? []).sort((a, b) => a[0] - b[0]).map(([, v]) => v);
  }
  const max = params['MaxResults'];
  return {
    region,
    action: params['Action'],
    version: params['Version'],
    filters,
    maxResults: max === undefined ? undefined : Number(max),
    nextToken: params['NextToken'],
    instanceIds: ids.sort((a, b) => a[0] - b[0]).map(([, v]) => v),
    params,
    userAgent,
    signed: accessKeyId !== undefined,
    accessKeyId,
    service,
    status: 0,
    instances: 0,
  };
}

function describeInstances(
  request: RecordedRequest,
  region: { instances: readonly FakeInstance[]; xml: Map<string, string> },
  defaultPageSize: number,
  answer: (status: number, xml: string) => void,
): void {
  if (request.maxResults !== undefined) {
    if (!Number.isInteger(request.maxResults) || request.maxResults < 5 || request.maxResults > 1000) {
      return answer(400, errorXml('InvalidParameterValue', `Value ( ${request.params['MaxResults']} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.`));
    }
    if (request.instanceIds.length > 0) {
      return answer(400, errorXml('InvalidParameterCombination', 'The parameter instancesSet cannot be used with the parameter maxResults'));
    }
  }
  for (const name of Object.keys(request.filters)) {
    if (!knownFilter(name)) return answer(400, errorXml('InvalidParameterValue', `The filter '${name}' is invalid`));
  }
  const matching = region.instances.filter((i) => matchesFilters(i, request.filters) && (request.instanceIds.length === 0 || request.instanceIds.includes(i.id)));
  let offset = 0;
  if (request.nextToken !== undefined) {
    const decoded = decodeToken(request.nextToken);
    if (decoded === undefined) return answer(400, errorXml('InvalidPaginationToken', 'The specified pagination token is not valid or is expired.'));
    offset = decoded;
  }
  const size = request.maxResults ?? defaultPageSize;
  const page = matching.slice(offset, offset + size);
  const next = offset + size < matching.length ? encodeToken(offset + size) : undefined;
  request.instances = page.length;
  answer(200, describeInstancesXml(page, next, region.xml));
}

// Tokens are opaque to clients; this one only needs to round-trip an offset.
function encodeToken(offset: number): string {
  return Buffer.from(JSON.stringify({ o: offset, n: randomUUID() })).toString('base64');
}

function decodeToken(token: string): number | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as { o?: unknown };
    return typeof parsed.o === 'number' && parsed.o >= 0 ? parsed.o : undefined;
  } catch {
    return undefined;
  }
}

const INSTANCE_FILTERS = new Set(['instance-state-name', 'instance-id', 'instance-type', 'availability-zone', 'vpc-id', 'subnet-id', 'image-id', 'tag-key', 'tag-value', 'private-ip-address', 'ip-address', 'private-dns-name', 'dns-name', 'reservation-id']);

function knownFilter(name: string): boolean {
  return INSTANCE_FILTERS.has(name) || name.startsWith('tag:');
}

function matchesFilters(i: FakeInstance, filters: Readonly<Record<string, readonly string[]>>): boolean {
  for (const [name, values] of Object.entries(filters)) {
    const have = filterValues(i, name);
    if (!values.some((v) => have.some((h) => wildcard(v).test(h)))) return false;
  }
  return true;
}

function filterValues(i: FakeInstance, name: string): string[] {
  const tags = i.tags ?? {};
  if (name.startsWith('tag:')) {
    const v = tags[name.slice(4)];
    return v === undefined ? [] : [v];
  }
  const d = withDefaults(i);
  const one = (v: string | null | undefined): string[] => (v === null || v === undefined ? [] : [v]);
  switch (name) {
    case 'instance-state-name': return [d.state];
    case 'instance-id': return [i.id];
    case 'instance-type': return [d.type];
    case 'availability-zone': return [d.az];
    case 'vpc-id': return [d.vpcId];
    case 'subnet-id': return [d.subnetId];
    case 'image-id': return [d.imageId];
    case 'tag-key': return Object.keys(tags);
    case 'tag-value': return Object.values(tags);
    case 'private-ip-address': return one(d.privateIp);
    case 'ip-address': return one(d.publicIp);
    case 'private-dns-name': return one(d.privateDns);
    case 'dns-name': return one(d.publicDns);
    case 'reservation-id': return [d.reservationId];
    default: return [];
  }
}

/** EC2 filter values take `*` and `?` wildcards. */
function wildcard(pattern: string): RegExp {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 's');
}

const STATE_CODES: Record<string, number> = { pending: 0, running: 16, 'shutting-down': 32, terminated: 48, stopping: 64, stopped: 80 };

interface FullInstance {
  id: string;
  state: string;
  type: string;
  az: string;
  imageId: string;
  vpcId: string;
  subnetId: string;
  privateIp: string | null;
  publicIp: string | null;
  privateDns: string | null;
  publicDns: string | null;
  ipv6: string | null;
  reservationId: string;
}

function withDefaults(i: FakeInstance): FullInstance {
  const n = Number.parseInt(i.id.replace(/[^0-9a-f]/g, '').slice(-6) || '1', 16);
  const privateIp = i.privateIp === undefined ? `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}` : i.privateIp;
  return {
    id: i.id,
    state: i.state ?? 'running',
    type: i.type ?? 't3.micro',
    az: i.az ?? 'us-east-1a',
    imageId: i.imageId ?? 'ami-0abcdef1234567890',
    vpcId: i.vpcId ?? 'vpc-0123456789abcdef0',
    subnetId: i.subnetId ?? 'subnet-0123456789abcdef0',
    privateIp,
    publicIp: i.publicIp === undefined ? null : i.publicIp,
    privateDns: i.privateDns === undefined ? (privateIp === null ? null : `ip-${privateIp.replace(/\./g, '-')}.ec2.internal`) : i.privateDns,
    publicDns: i.publicDns === undefined ? null : i.publicDns,
    ipv6: i.ipv6 === undefined ? null : i.ipv6,
    reservationId: i.reservationId ?? `r-${i.id.replace(/^i-/, '')}`,
  };
}

export function xmlEscape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&apos;'));
}

const el = (name: string, value: string | number | null): string => (value === null ? '' : `<${name}>${typeof value === 'number' ? value : xmlEscape(value)}</${name}>`);

/** One instancesSet item, shaped like EC2's (most fields EC2 sends, in its order). */
export function instanceXml(i: FakeInstance): string {
  const d = withDefaults(i);
  const tags = Object.entries(i.tags ?? {});
  const mac = `02:${d.id.slice(-10).replace(/(..)(?!$)/g, '$1:')}`.slice(0, 17);
  return (
    `<item>${el('instanceId', d.id)}${el('imageId', d.imageId)}` +
    `<instanceState>${el('code', STATE_CODES[d.state] ?? 16)}${el('name', d.state)}</instanceState>` +
    `${d.privateDns === null ? '<privateDnsName/>' : el('privateDnsName', d.privateDns)}${d.publicDns === null ? '<dnsName/>' : el('dnsName', d.publicDns)}<reason/>` +
    `${el('keyName', 'ops')}<amiLaunchIndex>0</amiLaunchIndex><productCodes/>${el('instanceType', d.type)}` +
    `<launchTime>2024-03-01T10:00:00.000Z</launchTime>` +
    `<placement>${el('availabilityZone', d.az)}<groupName/><tenancy>default</tenancy></placement>` +
    `<monitoring><state>disabled</state></monitoring>${el('subnetId', d.subnetId)}${el('vpcId', d.vpcId)}` +
    `${el('privateIpAddress', d.privateIp)}${el('ipAddress', d.publicIp)}<sourceDestCheck>true</sourceDestCheck>` +
    `<groupSet><item><groupId>sg-0123456789abcdef0</groupId><groupName>default</groupName></item></groupSet>` +
    `<architecture>x86_64</architecture><rootDeviceType>ebs</rootDeviceType><rootDeviceName>/dev/xvda</rootDeviceName>` +
    `<blockDeviceMapping><item><deviceName>/dev/xvda</deviceName><ebs><volumeId>vol-${d.id.slice(2)}</volumeId><status>attached</status>` +
    `<attachTime>2024-03-01T10:00:01.000Z</attachTime><deleteOnTermination>true</deleteOnTermination></ebs></item></blockDeviceMapping>` +
    `<virtualizationType>hvm</virtualizationType><clientToken/>` +
    (tags.length > 0 ? `<tagSet>${tags.map(([k, v]) => `<item>${el('key', k)}${el('value', v)}</item>`).join('')}</tagSet>` : '') +
    `<hypervisor>xen</hypervisor>` +
    `<networkInterfaceSet><item><networkInterfaceId>eni-${d.id.slice(2)}</networkInterfaceId>${el('subnetId', d.subnetId)}${el('vpcId', d.vpcId)}` +
    `<description/><ownerId>123456789012</ownerId><status>in-use</status>${el('macAddress', mac)}` +
    `${el('privateIpAddress', d.privateIp)}${el('privateDnsName', d.privateDns)}<sourceDestCheck>true</sourceDestCheck>` +
    `<groupSet><item><groupId>sg-0123456789abcdef0</groupId><groupName>default</groupName></item></groupSet>` +
    `<attachment><attachmentId>eni-attach-${d.id.slice(2)}</attachmentId><deviceIndex>0</deviceIndex><status>attached</status>` +
    `<attachTime>2024-03-01T10:00:00.000Z</attachTime><deleteOnTermination>true</deleteOnTermination><networkCardIndex>0</networkCardIndex></attachment>` +
    (d.publicIp !== null ? `<association>${el('publicIp', d.publicIp)}${d.publicDns === null ? '<publicDnsName/>' : el('publicDnsName', d.publicDns)}<ipOwnerId>amazon</ipOwnerId></association>` : '') +
    `<privateIpAddressesSet><item>${el('privateIpAddress', d.privateIp)}${el('privateDnsName', d.privateDns)}<primary>true</primary></item></privateIpAddressesSet>` +
    (d.ipv6 !== null ? `<ipv6AddressesSet><item>${el('ipv6Address', d.ipv6)}<isPrimaryIpv6>true</isPrimaryIpv6></item></ipv6AddressesSet>` : '<ipv6AddressesSet/>') +
    `<interfaceType>interface</interfaceType></item></networkInterfaceSet>` +
    `<ebsOptimized>false</ebsOptimized><enaSupport>true</enaSupport>` +
    `<cpuOptions><coreCount>1</coreCount><threadsPerCore>2</threadsPerCore></cpuOptions>` +
    `<capacityReservationSpecification><capacityReservationPreference>open</capacityReservationPreference></capacityReservationSpecification>` +
    `<hibernationOptions><configured>false</configured></hibernationOptions>` +
    `<metadataOptions><state>applied</state><httpTokens>required</httpTokens><httpPutResponseHopLimit>2</httpPutResponseHopLimit><httpEndpoint>enabled</httpEndpoint>` +
    `<httpProtocolIpv6>disabled</httpProtocolIpv6><instanceMetadataTags>disabled</instanceMetadataTags></metadataOptions>` +
    `<enclaveOptions><enabled>false</enabled></enclaveOptions><bootMode>uefi-preferred</bootMode>` +
    `<platformDetails>Linux/UNIX</platformDetails><usageOperation>RunInstances</usageOperation>` +
    `<usageOperationUpdateTime>2024-03-01T10:00:00.000Z</usageOperationUpdateTime>` +
    `<privateDnsNameOptions><hostnameType>ip-name</hostnameType><enableResourceNameDnsARecord>false</enableResourceNameDnsARecord>` +
    `<enableResourceNameDnsAAAARecord>false</enableResourceNameDnsAAAARecord></privateDnsNameOptions>` +
    `${el('ipv6Address', d.ipv6)}<maintenanceOptions><autoRecovery>default</autoRecovery></maintenanceOptions>` +
    `<currentInstanceBootMode>uefi</currentInstanceBootMode></item>`
  );
}

/** A DescribeInstancesResponse with one reservationSet item per reservation id, in first-seen order. */
export function describeInstancesXml(page: readonly FakeInstance[], nextToken: string | undefined, cache?: Map<string, string>): string {
  const reservations = new Map<string, string[]>();
  for (const i of page) {
    const r = withDefaults(i).reservationId;
    let xml = cache?.get(i.id);
    if (xml === undefined) {
      xml = instanceXml(i);
      cache?.set(i.id, xml);
    }
    const list = reservations.get(r);
    if (list) list.push(xml);
    else reservations.set(r, [xml]);
  }
  const items = [...reservations].map(
    ([id, xs]) => `<item>${el('reservationId', id)}<ownerId>123456789012</ownerId><groupSet/><instancesSet>${xs.join('')}</instancesSet></item>`,
  );
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<DescribeInstancesResponse xmlns="${EC2_NAMESPACE}">${el('requestId', randomUUID())}` +
    (items.length > 0 ? `<reservationSet>${items.join('')}</reservationSet>` : '<reservationSet/>') +
    `${nextToken === undefined ? '' : el('nextToken', nextToken)}</DescribeInstancesResponse>`
  );
}

function availabilityZonesXml(region: string, instances: readonly FakeInstance[]): string {
  const zones = new Set(instances.map((i) => withDefaults(i).az));
  if (zones.size === 0) zones.add(`${region}a`);
  const items = [...zones].sort().map(
    (z, n) =>
      `<item><zoneName>${xmlEscape(z)}</zoneName><zoneId>${xmlEscape(region.replace(/-/g, '').slice(0, 4))}-az${n + 1}</zoneId><zoneState>available</zoneState>` +
      `<regionName>${xmlEscape(region)}</regionName><messageSet/><optInStatus>opt-in-not-required</optInStatus><groupName>${xmlEscape(region)}</groupName>` +
      `<networkBorderGroup>${xmlEscape(region)}</networkBorderGroup><zoneType>availability-zone</zoneType></item>`,
  );
  return `<?xml version="1.0" encoding="UTF-8"?>\n<DescribeAvailabilityZonesResponse xmlns="${EC2_NAMESPACE}">${el('requestId', randomUUID())}<availabilityZoneInfo>${items.join('')}</availabilityZoneInfo></DescribeAvailabilityZonesResponse>`;
}

/** STS's answer: credentials whose access key id names the role, so tests can see them used. */
export const ASSUMED_KEY_PREFIX = 'ASIAFAKE';

function assumeRoleXml(params: Readonly<Record<string, string>>): string {
  const role = params['RoleArn'] ?? '';
  const session = params['RoleSessionName'] ?? '';
  const expiration = new Date(Date.now() + 3600_000).toISOString();
  return (
    `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>` +
    `<AssumedRoleUser>${el('Arn', `${role.replace(':iam::', ':sts::').replace(':role/', ':assumed-role/')}/${session}`)}${el('AssumedRoleId', `AROAFAKE:${session}`)}</AssumedRoleUser>` +
    `<Credentials>${el('AccessKeyId', `${ASSUMED_KEY_PREFIX}${role.split('/').pop() ?? ''}`.slice(0, 128))}${el('SecretAccessKey', 'fake-assumed-secret')}` +
    `${el('SessionToken', 'fake-session-token')}${el('Expiration', expiration)}</Credentials>` +
    `</AssumeRoleResult><ResponseMetadata>${el('RequestId', randomUUID())}</ResponseMetadata></AssumeRoleResponse>`
  );
}

/** STS's error document (the AWS query `ErrorResponse` shape, unlike EC2's). */
function stsErrorXml(code: string, message: string): string {
  return `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>${el('Code', code)}${el('Message', message)}</Error>${el('RequestId', randomUUID())}</ErrorResponse>`;
}

/** EC2's error document (its Query API errors are not the AWS `ErrorResponse` shape). */
export function errorXml(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>${el('Code', code)}${el('Message', message)}</Error></Errors>${el('RequestID', randomUUID())}</Response>`;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** `count` running instances with ids i-000…, one reservation each, tagged like a fleet. */
export function fleet(count: number, extra: (n: number) => Partial<FakeInstance> = () => ({})): FakeInstance[] {
  const out: FakeInstance[] = [];
  for (let n = 0; n < count; n++) {
    const id = `i-${n.toString(16).padStart(17, '0')}`;
    out.push({ id, az: `us-east-1${'abc'[n % 3] ?? 'a'}`, tags: { Name: `svc-${n % 50}`, pprof: 'true', team: `team-${n % 7}` }, ...extra(n) });
  }
  return out;
}

export const FAKE_ACCESS_KEY_ID = 'AKIAFAKEEXAMPLE00001';

/**
 * Environment in which the AWS SDK reaches nothing but a fake: static keys,
 * no shared config files, no instance metadata, no region unless given.
 */
export function fakeAwsEnv(base: NodeJS.ProcessEnv = process.env, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) if (!k.startsWith('AWS_')) env[k] = v;
  return {
    ...env,
    AWS_ACCESS_KEY_ID: FAKE_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: 'fake-secret-access-key',
    AWS_CONFIG_FILE: '/nonexistent/pprof-scraper-test/config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/pprof-scraper-test/credentials',
    AWS_EC2_METADATA_DISABLED: 'true',
    ...extra,
  };
}

/** Puts fakeAwsEnv() into process.env; returns a function that restores the old environment. */
export function useFakeAwsEnv(extra: Record<string, string> = {}): () => void {
  const saved = { ...process.env };
  const next = fakeAwsEnv(process.env, extra);
  for (const k of Object.keys(process.env)) if (!(k in next)) delete process.env[k];
  Object.assign(process.env, next);
  return () => {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  };
}

export interface ImdsFake {
  /** Give it as AWS_EC2_METADATA_SERVICE_ENDPOINT. */
  readonly url: string;
  /** `PUT /latest/api/token`, `GET /latest/meta-data/placement/region (token: yes|no)` … */
  readonly requests: string[];
  close(): Promise<void>;
}

/** Instance metadata as IMDSv2 serves it: a session token first, then only requests that carry it. */
export async function startImdsFake(region: string): Promise<ImdsFake> {
  const token = randomUUID();
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const carries = req.headers['x-aws-ec2-metadata-token'] === token;
    requests.push(`${req.method ?? ''} ${req.url ?? ''}${req.method === 'GET' ? ` (token: ${carries ? 'yes' : 'no'})` : ''}`);
    if (req.method === 'PUT' && req.url === '/latest/api/token' && req.headers['x-aws-ec2-metadata-token-ttl-seconds'] !== undefined) {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(token);
    } else if (req.method === 'GET' && !carries) {
      res.writeHead(401).end();
    } else if (req.method === 'GET' && req.url === '/latest/meta-data/placement/region') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(region);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, requests, close: () => closeServer(server) };
}
