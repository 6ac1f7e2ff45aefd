/**
 * How a target's service and labels travel to Parca (series labels by
 * Parca's rules) and to OTLP (resource attributes with their semantic
 * conventions), and which gRPC codes each retries.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Code } from '@connectrpc/connect';
import { resourceAttributes } from '../../src/repositories/otlp-convert.js';
import { otlpGrpcRule } from '../../src/repositories/otlp.js';
import { parcaGrpcRule, parcaBaseUrl } from '../../src/repositories/parca.js';
import { parcaLabels, parcaProfileName, profileTypeProblem } from '../../src/repositories/parca-labels.js';

describe('Parca series labels', () => {
  test('__name__ is Parca\'s name for Go\'s types, else the type made a legal metric name', () => {
    assert.deepEqual(['cpu', 'heap', 'allocs', 'block', 'mutex', 'goroutine', 'threadcreate'].map(parcaProfileName), ['process_cpu', 'memory', 'memory', 'block', 'mutex', 'goroutine', 'threadcreate']);
    assert.equal(parcaProfileName('fgprof'), 'fgprof');
    assert.equal(parcaProfileName('my-type.v2'), 'my_type_v2');
    assert.equal(parcaProfileName('2nd'), '_2nd');
  });

  test('job carries the service; a target label that takes job or __name__ is exported_, said once per name; empty values are left out', () => {
    const renamed: string[] = [];
    const labels = parcaLabels('memory', 'api', { instance: '10.0.0.1:6060', job: 'batch', __name__: 'x', empty: '' }, (from, to) => renamed.push(`${from}->${to}`));
    assert.deepEqual(labels, [
      ['__name__', 'memory'],
      ['job', 'api'],
      ['instance', '10.0.0.1:6060'],
      ['exported_job', 'batch'],
      ['exported___name__', 'x'],
    ]);
    assert.deepEqual(renamed, ['job->exported_job', '__name__->exported___name__']);
  });

  test('a sample or period type that is not legal in a metric name is refused before sending', () => {
    assert.equal(profileTypeProblem('memory', ['alloc_objects', 'count', 'space', 'bytes', '', '']), undefined);
    assert.match(profileTypeProblem('x', ['cpu-time', 'nanoseconds']) ?? '', /"cpu-time"/);
  });

  test('url: host:port is TLS unless insecure; a scheme decides for itself', () => {
    assert.equal(parcaBaseUrl('parca:7070', false), 'https://parca:7070');
    assert.equal(parcaBaseUrl('parca:7070', true), 'http://parca:7070');
    assert.equal(parcaBaseUrl('http://parca:7070/', false), 'http://parca:7070');
  });

  test('INVALID_ARGUMENT and the other request or rights codes are permanent; the rest retried', () => {
    assert.equal(parcaGrpcRule(Code.InvalidArgument, undefined), 'permanent');
    assert.equal(parcaGrpcRule(Code.Unauthenticated, undefined), 'permanent');
    assert.equal(parcaGrpcRule(Code.Unknown, undefined), 'retryable');
    assert.equal(parcaGrpcRule(Code.Unavailable, undefined), 'retryable');
  });
});

describe('OTLP', () => {
  test('resource attributes: service.name, every label, and the semantic conventions beside them', () => {
    const attrs = Object.fromEntries(
      resourceAttributes('billing', { instance: '10.0.0.7:7070', provider: 'ec2', instance_id: 'i-0abc', region: 'eu-west-1', team: 'core' }).map((kv) => [kv.key, (kv.value?.value as { value: string }).value]),
    );
    assert.deepEqual(attrs, {
      'service.name': 'billing',
      instance: '10.0.0.7:7070',
      provider: 'ec2',
      instance_id: 'i-0abc',
      region: 'eu-west-1',
      team: 'core',
      'service.instance.id': '10.0.0.7:7070',
      'host.id': 'i-0abc',
      'cloud.region': 'eu-west-1',
      'cloud.provider': 'aws',
      'cloud.platform': 'aws_ec2',
    });
  });

  test('gRPC codes by the OTLP specification\'s table; RESOURCE_EXHAUSTED only with a RetryInfo', () => {
    const retryable = [Code.Canceled, Code.DeadlineExceeded, Code.Aborted, Code.OutOfRange, Code.Unavailable, Code.DataLoss];
    const permanent = [Code.Unknown, Code.InvalidArgument, Code.NotFound, Code.AlreadyExists, Code.PermissionDenied, Code.Unauthenticated, Code.FailedPrecondition, Code.Unimplemented, Code.Internal];
    for (const c of retryable) assert.equal(otlpGrpcRule(c, undefined), 'retryable', Code[c]);
    for (const c of permanent) assert.equal(otlpGrpcRule(c, undefined), 'permanent', Code[c]);
    assert.equal(otlpGrpcRule(Code.ResourceExhausted, undefined), 'permanent');
    assert.equal(otlpGrpcRule(Code.ResourceExhausted, 1000), 'retryable');
  });
});
