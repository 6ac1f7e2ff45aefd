import assert from 'node:assert/strict';
import {test} from 'node:test';
import type {ScrapedProfile} from '../../src/profiles/profile.js';
import {metadataValue, resultOfS3Error, s3Key, s3Metadata} from '../../src/repositories/s3.js';
import {scrapedProfile} from '../helpers/profiles.js';

const profile = (over: Partial<ScrapedProfile> = {}): ScrapedProfile =>
  scrapedProfile({
    targetId: '9c1e4f',
    labels: {instance: '10.0.0.7:7070', region: 'eu-west-1'},
    time: Date.UTC(2026, 0, 5, 8, 58, 0, 123),
    sampleCount: 4,
    url: 'http://10.0.0.7:7070/debug/pprof/heap',
    data: Buffer.from('x'),
    ...over,
  });

void test('keys follow {prefix}{service}/{type}/{yyyy}/{mm}/{dd}/{time}_{instance}_{digest}.pb.gz in UTC', () => {
  assert.match(s3Key('pprof/', profile()), /^pprof\/billing\/heap\/2026\/01\/05\/20260105T085800\.123Z_10\.0\.0\.7_7070_[0-9a-f]{12}\.pb\.gz$/);
  assert.match(s3Key('', profile({service: 'a/b', labels: {}})), /^a_b\/heap\/2026\/01\/05\/20260105T085800\.123Z_9c1e4f_[0-9a-f]{12}\.pb\.gz$/);
});

// S3 PutObject replaces an existing object under the same key (AWS S3 API
// reference, PutObject; s3rver does the same): a key must never be shared by two profiles
void test('two profiles of one target and type at one time get two keys; a retry of one gets the same key', () => {
  const a = profile({data: Buffer.from('first profile')});
  const b = profile({data: Buffer.from('second profile')});
  assert.notEqual(s3Key('pprof/', a), s3Key('pprof/', b));
  assert.equal(s3Key('pprof/', a), s3Key('pprof/', {...a}), 'the same profile sent again overwrites nothing new');
  assert.notEqual(s3Key('pprof/', a), s3Key('pprof/', {...a, targetId: 'other'}), 'another target with the same instance label');
});

void test('metadata holds the profile\'s identity and its labels; odd values are percent-encoded', () => {
  const {metadata, labels} = s3Metadata(profile({labels: {instance: 'x:1', note: 'grüße 100%'}}), 'side.json');
  assert.equal(labels, undefined);
  assert.deepEqual(metadata, {
    'pprof-service': 'billing',
    'pprof-type': 'heap',
    'pprof-time': '2026-01-05T08:58:00.123Z',
    'pprof-target-id': '9c1e4f',
    'pprof-url': 'http://10.0.0.7:7070/debug/pprof/heap',
    instance: 'x:1',
    note: 'gr%C3%BC%C3%9Fe%20100%25',
  });
  assert.equal(decodeURIComponent(metadata['note'] ?? ''), 'grüße 100%');
  assert.equal(metadataValue('plain value'), 'plain value');
});

void test('labels that differ only in case keep both values under distinct names, and the rename is reported', () => {
  const renames: string[] = [];
  const {metadata} = s3Metadata(profile({labels: {Env: 'a', env: 'b'}}), 's', (from, to) => renames.push(`${from}->${to}`));
  assert.equal(metadata['env'], 'a');
  assert.equal(metadata['env_2'], 'b');
  assert.deepEqual(renames, ['Env->env', 'env->env_2']);
});

void test('labels beyond S3\'s 2 KiB of metadata go to a sidecar object', () => {
  const {metadata, labels} = s3Metadata(profile({labels: {big: 'v'.repeat(3000), instance: 'i'}}), 'k.labels.json');
  assert.equal(metadata['pprof-labels'], 'k.labels.json');
  assert.equal(metadata['big'], undefined);
  assert.deepEqual(labels, {big: 'v'.repeat(3000), instance: 'i'});
});

void test('SDK errors map to results: throttling, 5xx, timeouts and network errors retry; other 4xx are permanent', () => {
  const sdk = (name: string, status?: number, headers: Record<string, string> = {}): unknown =>
    Object.assign(new Error(`${name} happened`), {name, ...(status !== undefined ? {$metadata: {httpStatusCode: status}, $response: {headers}} : {})});
  const table: [unknown, string][] = [
    [sdk('SlowDown', 503), 'retryable'],
    [sdk('InternalError', 500), 'retryable'],
    [sdk('RequestTimeout', 400), 'retryable'],
    [sdk('ExpiredToken', 400), 'retryable'],
    [sdk('TooManyRequests', 429), 'retryable'],
    [sdk('AccessDenied', 403), 'permanent'],
    [sdk('NoSuchBucket', 404), 'permanent'],
    [sdk('InvalidArgument', 400), 'permanent'],
    [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), {code: 'ECONNREFUSED'}), 'retryable'],
    [sdk('CredentialsProviderError'), 'retryable'],
  ];
  for (const [err, want] of table) assert.equal(resultOfS3Error(err, 'PUT s3://b/').status, want, String(err));
  const throttled = resultOfS3Error(sdk('TooManyRequests', 429, {'retry-after': '3'}), 'PUT s3://b/');
  assert.deepEqual(throttled, {status: 'retryable', error: 'PUT s3://b/: HTTP 429: TooManyRequests: TooManyRequests happened', retryAfterMs: 3000});
  const denied = resultOfS3Error(sdk('AccessDenied', 403), 'PUT s3://b/p/');
  assert.match((denied as {error: string}).error, /PUT s3:\/\/b\/p\/: HTTP 403: AccessDenied/);
});
