import type { EC2Client, EC2ClientConfig } from '@aws-sdk/client-ec2';
import { CallSignal } from '../../abort.js';
import type { Ec2Config } from '../../config/index.js';
import type { Discovered } from '../../targets/index.js';
import { DiscoveryError } from '../provider.js';
import type { Provider, ProviderDeps } from '../provider.js';
import { Ec2CredentialsError, ec2DiscoveryError } from './ec2-errors.js';
import type { CallContext } from './ec2-errors.js';
import { filtersOf, instanceMetadata } from './ec2-metadata.js';
import type { MetadataOptions } from './ec2-metadata.js';
import { instanceRegion } from './ec2-region.js';

/** EC2's largest page. */
const PAGE_SIZE = 1000;
/** A runaway pagination (a server that always answers with a token) stops here: a million instances. */
const MAX_PAGES = 1000;
/** The SDK's standard mode retries throttling, 5xx and network errors; never fewer attempts than this. */
const MIN_ATTEMPTS = 3;
const ROLE_SESSION_NAME = 'pprof-scraper';
const CONNECT_TIMEOUT_MS = 10_000;
/** One page of a thousand instances is a few MiB; a call that takes longer is retried. */
const REQUEST_TIMEOUT_MS = 30_000;
const NODE_WARNING_SWITCH = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

interface RegionClient {
  /** The configured region; undefined when the SDK finds it (AWS_REGION, the profile). */
  readonly region: string | undefined;
  readonly client: EC2Client;
}

/**
 * EC2 instances by DescribeInstances filters, in one region or several. Each
 * refresh reads every page of every region, or fails as a whole.
 */
export async function createEc2Provider(config: Ec2Config, source: number, deps: ProviderDeps): Promise<Provider> {
  // The SDK's documented switch for its Node-version notice, which would
  // otherwise land in the daemon's output. An operator's own setting stays.
  process.env[NODE_WARNING_SWITCH] ??= 'true';
  const { EC2Client, DescribeInstancesCommand } = await import('@aws-sdk/client-ec2');
  const where = `discovery[${source}].ec2`;
  const credentials = config.role_arn !== undefined ? await assumedRoleCredentials(config) : undefined;
  const regions = [...new Set([...(config.regions ?? []), ...(config.region !== undefined ? [config.region] : [])])];
  // The SDK's own warnings (two credential sources set, socket pool
  // exhausted) go to the daemon's log instead of the console. Its per-call
  // records (info, error) are left out: a failed refresh is reported once,
  // as a DiscoveryError, by the runner.
  const log = deps.logger.child({ provider: 'ec2', source: where });
  const sdkLogger = {
    debug: (): void => undefined,
    info: (): void => undefined,
    warn: (...args: unknown[]): void => log.warn(args.map((a) => (typeof a === 'string' ? a.replace(/\s+/g, ' ').trim() : JSON.stringify(a))).join(' ')),
    error: (): void => undefined,
  };

  const clientConfig = (region: string | undefined): EC2ClientConfig => ({
    ...(region !== undefined ? { region } : {}),
    ...(config.profile !== undefined ? { profile: config.profile } : {}),
    ...(config.endpoint !== undefined ? { endpoint: config.endpoint } : {}),
    ...(credentials !== undefined ? { credentials } : {}),
    logger: sdkLogger,
    retryMode: 'standard',
    maxAttempts: maxAttempts(),
    requestHandler: { connectionTimeout: CONNECT_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, throwOnRequestTimeout: true, logger: sdkLogger },
  });
  const clients: RegionClient[] = (regions.length > 0 ? regions : [undefined]).map((region) => ({ region, client: new EC2Client(clientConfig(region)) }));

  const filters = filtersOf(config);
  const metadata: MetadataOptions = { address: config.address, serviceTag: config.service_tag, tagLabels: config.tag_labels };

  /**
   * An entry without a region uses the SDK's (AWS_REGION, the profile's),
   * else the region of the instance the daemon runs on, as Prometheus does.
   */
  const regionOf = async (index: number): Promise<{ region: string; client: EC2Client }> => {
    const rc = clients[index] as RegionClient;
    if (rc.region !== undefined) return { region: rc.region, client: rc.client };
    let region: string | undefined;
    try {
      region = await rc.client.config.region();
    } catch {
      // none in the environment or the profile
    }
    let client = rc.client;
    if (region === undefined || region === '') {
      region = await instanceRegion();
      if (region === undefined) {
        throw new DiscoveryError(`${where}: no AWS region: set region or regions in ${where}, or AWS_REGION, or a region in the profile (instance metadata gave none either)`, { code: 'RegionMissing' });
      }
      rc.client.destroy();
      client = new EC2Client(clientConfig(region));
    }
    clients[index] = { region, client };
    return { region, client };
  };

  const describeRegion = async (index: number, signal: AbortSignal): Promise<Discovered[]> => {
    const rc = clients[index] as RegionClient;
    const ctx: CallContext = {
      where,
      region: rc.region ?? '(region from the AWS environment)',
      action: 'DescribeInstances',
      endpoint: config.endpoint,
      roleArn: config.role_arn,
      profile: config.profile,
    };
    try {
      const { region, client } = await regionOf(index);
      const context = { ...ctx, region };
      const found = new Map<string, Discovered>();
      /** One page, turned into compact metadata as it arrives; the SDK's objects end with this call. */
      const readPage = async (token: string | undefined): Promise<{ next: string | undefined }> => {
        let answer;
        try {
          answer = await client.send(new DescribeInstancesCommand({ Filters: filters, MaxResults: PAGE_SIZE, NextToken: token }), { abortSignal: signal });
        } catch (err) {
          throw ec2DiscoveryError(err, context);
        }
        for (const reservation of answer.Reservations ?? []) {
          for (const instance of reservation.Instances ?? []) {
            if (instance.InstanceId === undefined) continue;
            found.set(instance.InstanceId, instanceMetadata(instance, region, metadata));
          }
        }
        return { next: answer.NextToken };
      };
      let token: string | undefined;
      for (let page = 1; ; page++) {
        if (page > MAX_PAGES) throw new DiscoveryError(`${where}: DescribeInstances in ${region} still had more pages after ${MAX_PAGES}: narrow the filters`, { code: 'TooManyPages' });
        // each page in its own call: nothing the SDK made of it outlives it
        const { next } = await readPage(token);
        if (next === undefined || next === '') break;
        if (next === token) throw new DiscoveryError(`${where}: DescribeInstances in ${region} answered the same page token twice: the endpoint does not paginate correctly`, { code: 'PaginationLoop' });
        token = next;
      }
      return [...found.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, d]) => d);
    } catch (err) {
      throw ec2DiscoveryError(err, ctx);
    }
  };

  return {
    kind: 'ec2',
    source,
    directiveNoun: 'tag',
    refreshInterval: config.refresh,
    async refresh(signal: AbortSignal): Promise<Discovered[]> {
      // The first region that fails stops the others: a partial answer is never used.
      const stop = new CallSignal(signal);
      try {
        const results = await Promise.all(
          clients.map((_, index) =>
            describeRegion(index, stop.signal).catch((err: unknown) => {
              stop.abort();
              throw err;
            }),
          ),
        );
        return results.flat();
      } finally {
        stop.dispose();
      }
    },
    close(): Promise<void> {
      for (const rc of clients) rc.client.destroy();
      return Promise.resolve();
    },
  };
}

/** AWS_MAX_ATTEMPTS may ask for more attempts, never for fewer than MIN_ATTEMPTS. */
function maxAttempts(): number {
  const fromEnv = Number.parseInt(process.env['AWS_MAX_ATTEMPTS'] ?? '', 10);
  return Number.isFinite(fromEnv) ? Math.max(MIN_ATTEMPTS, fromEnv) : MIN_ATTEMPTS;
}

type CredentialsProvider = NonNullable<EC2ClientConfig['credentials']>;

/**
 * Credentials of `role_arn`, assumed with the standard chain's credentials
 * (and `profile`). AssumeRole failures are told apart from EC2's own.
 */
async function assumedRoleCredentials(config: Ec2Config): Promise<CredentialsProvider> {
  const { fromTemporaryCredentials } = await import('@aws-sdk/credential-providers');
  const stsRegion = config.region ?? config.regions?.[0];
  const assume = fromTemporaryCredentials({
    params: {
      RoleArn: config.role_arn,
      RoleSessionName: ROLE_SESSION_NAME,
      ...(config.external_id !== undefined ? { ExternalId: config.external_id } : {}),
    },
    ...(stsRegion !== undefined || config.profile !== undefined
      ? { clientConfig: { ...(stsRegion !== undefined ? { region: stsRegion } : {}), ...(config.profile !== undefined ? { profile: config.profile } : {}) } }
      : {}),
  });
  return async (props) => {
    try {
      return await assume(props);
    } catch (err) {
      throw new Ec2CredentialsError(isChainError(err) ? 'chain' : 'assume-role', { cause: err });
    }
  };
}

function isChainError(err: unknown): boolean {
  return err instanceof Error && err.name === 'CredentialsProviderError';
}
