import { DiscoveryError } from '../provider.js';

/** Where a failed call happened, for the message. */
export interface CallContext {
  /** `discovery[1].ec2` */
  readonly where: string;
  readonly region: string;
  readonly action: string;
  readonly endpoint: string | undefined;
  readonly roleArn: string | undefined;
  readonly profile: string | undefined;
}

/** Credentials could not be had: the chain found none, or AssumeRole failed. */
export class Ec2CredentialsError extends Error {
  override readonly name = 'Ec2CredentialsError';
  constructor(
    readonly stage: 'chain' | 'assume-role',
    options: { cause: unknown },
  ) {
    super(messageOf(options.cause), options);
  }
}

const THROTTLING = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'TransactionInProgressException',
  'EC2ThrottledException',
  'SlowDown',
  'PriorRequestNotComplete',
  'BandwidthLimitExceeded',
]);

const ACCESS = new Set(['UnauthorizedOperation', 'AccessDenied', 'AccessDeniedException', 'Blocked']);
const BAD_CREDENTIALS = new Set([
  'AuthFailure',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'UnrecognizedClientException',
  'IncompleteSignature',
  'MissingAuthenticationToken',
  'InvalidAccessKeyId',
  'ExpiredToken',
  'ExpiredTokenException',
  'RequestExpired',
]);
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'TimeoutError', 'RequestTimeout']);

/**
 * Turns what the SDK threw into a DiscoveryError that says what failed,
 * where (entry and region), the AWS error code, and what to do about it.
 */
export function ec2DiscoveryError(err: unknown, ctx: CallContext): DiscoveryError {
  if (err instanceof DiscoveryError) return err;
  const cause = err instanceof Ec2CredentialsError ? err.cause : err;
  const code = codeOf(cause);
  const status = statusOf(cause);
  const awsMessage = shorten(messageOf(cause));
  const throttled = (code !== undefined && THROTTLING.has(code)) || status === 429;
  const at = `${ctx.where}: ${code ?? 'error'} calling ${ctx.action} in ${ctx.region}`;
  const role = ctx.roleArn ?? 'the role';

  let what: string;
  if (err instanceof Ec2CredentialsError && err.stage === 'assume-role') {
    return new DiscoveryError(
      `${ctx.where}: ${code ?? 'error'} assuming role ${role} (for ${ctx.action} in ${ctx.region}): ` +
        `the credentials in use need sts:AssumeRole on it, and its trust policy must allow them and match external_id when it asks for one (${awsMessage})`,
      { code: code ?? 'AssumeRoleFailed', throttled, cause },
    );
  } else if (err instanceof Ec2CredentialsError || code === 'CredentialsProviderError') {
    return new DiscoveryError(
      `${ctx.where}: no AWS credentials for ${ctx.action} in ${ctx.region}: ` +
        `give the daemon credentials the standard AWS way: an instance or task role, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ` +
        `${ctx.profile !== undefined ? `profile ${JSON.stringify(ctx.profile)} in ~/.aws/config` : 'a profile in ~/.aws/config (AWS_PROFILE)'}, or SSO (${awsMessage})`,
      { code: 'CredentialsMissing', cause },
    );
  } else if (code !== undefined && ACCESS.has(code)) {
    what = ctx.roleArn !== undefined ? `the role ${ctx.roleArn} needs ec2:${ctx.action}` : `the instance role (or the credentials in use) needs ec2:${ctx.action}`;
  } else if (code !== undefined && BAD_CREDENTIALS.has(code)) {
    what = 'AWS rejected the credentials: check the access key, the session token and the machine clock';
  } else if (code === 'OptInRequired') {
    what = `the account is not subscribed to EC2 in ${ctx.region}, or the region is not enabled for it`;
  } else if (throttled) {
    what = `EC2 is throttling ${ctx.action} for this account; the daemon backs off and tries again (a longer refresh or narrower filters lower the rate)`;
  } else if (code === 'InvalidParameterValue' || code === 'InvalidFilter' || code === 'InvalidParameterCombination') {
    what = `check ${ctx.where}.filters: every name must be a DescribeInstances filter (tag:<key>, tag-key, vpc-id, instance-type, ...)`;
  } else if (/region is missing/i.test(awsMessage)) {
    return new DiscoveryError(`${ctx.where}: no AWS region: set region or regions in ${ctx.where}, or AWS_REGION, or a region in the profile`, { code: 'RegionMissing', cause });
  } else if (code !== undefined && NETWORK.has(code)) {
    what = `EC2 did not answer at ${ctx.endpoint ?? `its ${ctx.region} endpoint`}: check the network, a proxy, or ${ctx.where}.endpoint`;
  } else if (isParseError(cause)) {
    return new DiscoveryError(
      `${ctx.where}: unreadable answer to ${ctx.action} in ${ctx.region}: ${ctx.endpoint !== undefined ? `is ${ctx.endpoint} an EC2-compatible API? ` : ''}the daemon tries again at the next refresh (${awsMessage})`,
      { code: 'MalformedResponse', cause },
    );
  } else if (status !== undefined && status >= 500) {
    what = 'EC2 failed on its side; the daemon tries again';
  } else {
    what = 'the daemon tries again at the next refresh';
  }
  const said = awsMessage !== '' && awsMessage !== code ? ` (${awsMessage})` : '';
  return new DiscoveryError(`${at}: ${what}${said}`, { code: code ?? (status !== undefined ? `HTTP${status}` : undefined), throttled, cause });
}

function codeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { name?: unknown; code?: unknown; Code?: unknown; $metadata?: unknown };
  if (typeof e.Code === 'string') return e.Code;
  if (typeof e.code === 'string' && e.code !== '') return e.code;
  if (typeof e.name === 'string' && e.name !== 'Error' && e.name !== '') return e.name;
  return undefined;
}

function statusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const meta = (err as { $metadata?: { httpStatusCode?: unknown } }).$metadata;
  if (typeof meta?.httpStatusCode === 'number') return meta.httpStatusCode;
  const response = (err as { $response?: { statusCode?: unknown } }).$response;
  return typeof response?.statusCode === 'number' ? response.statusCode : undefined;
}

function isParseError(err: unknown): boolean {
  if (err instanceof SyntaxError) return true;
  const text = messageOf(err);
  return /deserializ|xml|parse|unexpected end|not well-formed|unclosed|invalid (?:character|tag)/i.test(text);
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

function shorten(text: string): string {
  // The SDK's own advice about a hidden $response field means nothing in a log line.
  const line = text.replace(/\s*Deserialization error: to see the raw response.*$/s, '').replace(/\s+/g, ' ').trim().replace(/\.$/, '');
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}
