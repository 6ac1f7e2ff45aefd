/**
 * Relabeling against Prometheus's own cases. The tables below are ported as
 * data from prometheus/prometheus model/relabel/relabel_test.go (TestRelabel,
 * TestRelabelValidate, TestTargetLabelLegacyValidity; Apache-2.0, Copyright
 * The Prometheus Authors), with the rules written as prometheus.yml holds
 * them and read through this project's schema. The cases that rely on
 * UTF-8 label names (which this daemon's label names never are) are kept
 * with the outcome the legacy validation gives.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { relabelRule } from '../../src/config/relabel.js';
import type { RelabelRule } from '../../src/config/relabel.js';
import { hashMod, relabel } from '../../src/targets/relabel.js';
import { RelabelRegex } from '../../src/targets/relabel-regex.js';
import { configErrors } from '../helpers/targets.js';

function rules(yaml: string): RelabelRule[] {
  return (parse(yaml) as unknown[]).map((r) => relabelRule.parse(r));
}

interface Case {
  readonly name: string;
  readonly input: Record<string, string>;
  readonly rules: string;
  readonly output?: Record<string, string>;
}

const CASES: Case[] = [
  {
    name: 'replace with ${1} twice',
    input: { a: 'foo', b: 'bar', c: 'baz' },
    rules: `[{source_labels: [a], regex: "f(.*)", target_label: d, separator: ";", replacement: "ch\${1}-ch\${1}", action: replace}]`,
    output: { a: 'foo', b: 'bar', c: 'baz', d: 'choo-choo' },
  },
  {
    name: 'two rules, the second reading what the first wrote',
    input: { a: 'foo', b: 'bar', c: 'baz' },
    rules: `
- {source_labels: [a, b], regex: "f(.*);(.*)r", target_label: a, separator: ";", replacement: "b\${1}\${2}m", action: replace}
- {source_labels: [c, a], regex: "(b).*b(.*)ba(.*)", target_label: d, separator: ";", replacement: "$1$2$2$3", action: replace}`,
    output: { a: 'boobam', b: 'bar', c: 'baz', d: 'boooom' },
  },
  {
    name: 'drop stops before later rules',
    input: { a: 'foo' },
    rules: `
- {source_labels: [a], regex: ".*o.*", action: drop}
- {source_labels: [a], regex: "f(.*)", target_label: d, separator: ";", replacement: "ch$1-ch$1", action: replace}`,
  },
  { name: 'drop on a match', input: { a: 'foo', b: 'bar' }, rules: `[{source_labels: [a], regex: ".*o.*", action: drop}]` },
  {
    name: 'replace with a group in the middle',
    input: { a: 'abc' },
    rules: `[{source_labels: [a], regex: ".*(b).*", target_label: d, separator: ";", replacement: "$1", action: replace}]`,
    output: { a: 'abc', d: 'b' },
  },
  { name: 'drop without a match keeps', input: { a: 'foo' }, rules: `[{source_labels: [a], regex: no-match, action: drop}]`, output: { a: 'foo' } },
  { name: 'the regex is anchored: f|o does not match foo', input: { a: 'foo' }, rules: `[{source_labels: [a], regex: "f|o", action: drop}]`, output: { a: 'foo' } },
  { name: 'keep without a match drops', input: { a: 'foo' }, rules: `[{source_labels: [a], regex: no-match, action: keep}]` },
  { name: 'keep on a match', input: { a: 'foo' }, rules: `[{source_labels: [a], regex: "f.*", action: keep}]`, output: { a: 'foo' } },
  {
    name: 'no replacement without a match',
    input: { a: 'boo' },
    rules: `[{source_labels: [a], regex: f, target_label: b, replacement: bar, action: replace}]`,
    output: { a: 'boo' },
  },
  {
    name: 'a blank replacement deletes the label',
    input: { a: 'foo', f: 'baz' },
    rules: `[{source_labels: [a], regex: "(f).*", target_label: "$1", replacement: "$2", action: replace}]`,
    output: { a: 'foo' },
  },
  {
    name: 'hashmod',
    input: { a: 'foo', b: 'bar', c: 'baz' },
    rules: `[{source_labels: [c], target_label: d, separator: ";", action: hashmod, modulus: 1000}]`,
    output: { a: 'foo', b: 'bar', c: 'baz', d: '976' },
  },
  {
    name: 'hashmod of a value with a newline',
    input: { a: 'foo\nbar' },
    rules: `[{source_labels: [a], target_label: b, separator: ";", action: hashmod, modulus: 1000}]`,
    output: { a: 'foo\nbar', b: '734' },
  },
  {
    name: 'labelmap',
    input: { a: 'foo', b1: 'bar', b2: 'baz' },
    rules: `[{regex: "(b.*)", replacement: "bar_\${1}", action: labelmap}]`,
    output: { a: 'foo', b1: 'bar', b2: 'baz', bar_b1: 'bar', bar_b2: 'baz' },
  },
  {
    name: 'labelmap of __meta_ labels',
    input: { a: 'foo', __meta_my_bar: 'aaa', __meta_my_baz: 'bbb', __meta_other: 'ccc' },
    rules: `[{regex: "__meta_(my.*)", replacement: "\${1}", action: labelmap}]`,
    output: { a: 'foo', __meta_my_bar: 'aaa', __meta_my_baz: 'bbb', __meta_other: 'ccc', my_bar: 'aaa', my_baz: 'bbb' },
  },
  {
    name: 'target_label from a group',
    input: { a: 'some-name-value' },
    rules: `[{source_labels: [a], regex: "some-([^-]+)-([^,]+)", action: replace, replacement: "\${2}", target_label: "\${1}"}]`,
    output: { a: 'some-name-value', name: 'value' },
  },
  {
    name: 'a replacement naming no group is blank',
    input: { a: 'some-name-value' },
    rules: `[{source_labels: [a], regex: "some-([^-]+)-([^,]+)", action: replace, replacement: "\${3}", target_label: "\${1}"}]`,
    output: { a: 'some-name-value' },
  },
  {
    name: 'a target_label that expands to nothing valid sets nothing',
    input: { a: 'some-name-0' },
    rules: `
- {source_labels: [a], regex: "some-([^-]+)-([^,]+)", action: replace, replacement: "\${1}", target_label: "\${3}"}
- {source_labels: [a], regex: "some-([^-]+)-([^,]+)", action: replace, replacement: "\${1}", target_label: "\${3}"}
- {source_labels: [a], regex: "some-([^-]+)(-[^,]+)", action: replace, replacement: "\${1}", target_label: "\${3}"}`,
    output: { a: 'some-name-0' },
  },
  {
    name: 'a real-life tag list',
    input: { __meta_sd_tags: 'path:/secret,job:some-job,label:foo=bar' },
    rules: `
- {source_labels: [__meta_sd_tags], regex: "(?:.+,|^)path:(/[^,]+).*", action: replace, replacement: "\${1}", target_label: __metrics_path__}
- {source_labels: [__meta_sd_tags], regex: "(?:.+,|^)job:([^,]+).*", action: replace, replacement: "\${1}", target_label: job}
- {source_labels: [__meta_sd_tags], regex: "(?:.+,|^)label:([^=]+)=([^,]+).*", action: replace, replacement: "\${2}", target_label: "\${1}"}`,
    output: { __meta_sd_tags: 'path:/secret,job:some-job,label:foo=bar', __metrics_path__: '/secret', job: 'some-job', foo: 'bar' },
  },
  {
    name: 'labeldrop, then a label set again, then keep on it (prometheus#12283)',
    input: { __meta_kubernetes_pod_container_port_name: 'foo', __meta_kubernetes_pod_annotation_XXX_metrics_port: '9091' },
    rules: `
- {regex: "^__meta_kubernetes_pod_container_port_name$", action: labeldrop}
- {source_labels: [__meta_kubernetes_pod_annotation_XXX_metrics_port], regex: "(.+)", action: replace, replacement: metrics, target_label: __meta_kubernetes_pod_container_port_name}
- {source_labels: [__meta_kubernetes_pod_container_port_name], regex: "^metrics$", action: keep}`,
    output: { __meta_kubernetes_pod_annotation_XXX_metrics_port: '9091', __meta_kubernetes_pod_container_port_name: 'metrics' },
  },
  { name: 'labelkeep', input: { a: 'foo', b1: 'bar', b2: 'baz' }, rules: `[{regex: "(b.*)", action: labelkeep}]`, output: { b1: 'bar', b2: 'baz' } },
  { name: 'labeldrop', input: { a: 'foo', b1: 'bar', b2: 'baz' }, rules: `[{regex: "(b.*)", action: labeldrop}]`, output: { a: 'foo' } },
  {
    name: 'uppercase and lowercase',
    input: { foo: 'bAr123Foo' },
    rules: `
- {source_labels: [foo], action: uppercase, target_label: foo_uppercase}
- {source_labels: [foo], action: lowercase, target_label: foo_lowercase}`,
    output: { foo: 'bAr123Foo', foo_lowercase: 'bar123foo', foo_uppercase: 'BAR123FOO' },
  },
  {
    name: 'keepequal keeps equal values',
    input: { __tmp_port: '1234', __port1: '1234', __port2: '5678' },
    rules: `[{source_labels: [__tmp_port], action: keepequal, target_label: __port1}]`,
    output: { __tmp_port: '1234', __port1: '1234', __port2: '5678' },
  },
  { name: 'dropequal drops equal values', input: { __tmp_port: '1234', __port1: '1234', __port2: '5678' }, rules: `[{source_labels: [__tmp_port], action: dropequal, target_label: __port1}]` },
  {
    name: 'dropequal keeps different values',
    input: { __tmp_port: '1234', __port1: '1234', __port2: '5678' },
    rules: `[{source_labels: [__tmp_port], action: dropequal, target_label: __port2}]`,
    output: { __tmp_port: '1234', __port1: '1234', __port2: '5678' },
  },
  { name: 'keepequal drops different values', input: { __tmp_port: '1234', __port1: '1234', __port2: '5678' }, rules: `[{source_labels: [__tmp_port], action: keepequal, target_label: __port2}]` },
  {
    name: '. matches a newline',
    input: { a: 'line1\nline2', b: 'bar', c: 'baz' },
    rules: `[{source_labels: [a], regex: "line1.*line2", target_label: d, separator: ";", replacement: "match\${1}", action: replace}]`,
    output: { a: 'line1\nline2', b: 'bar', c: 'baz', d: 'match' },
  },
  {
    name: 'named groups, in both $ forms and both group syntaxes',
    input: { a: 'line1\nline2', b: 'bar', c: 'baz' },
    rules: `
- {source_labels: [a], regex: "(line1).*(?<second>line2)", target_label: "label1_\${1}", separator: ";", replacement: "val_\${second}", action: replace}
- {source_labels: [a], regex: "(line1).*(?P<second>line2)", target_label: "label2_$1", separator: ";", replacement: "val_$second", action: replace}`,
    output: { a: 'line1\nline2', b: 'bar', c: 'baz', label1_line1: 'val_line2', label2_line1: 'val_line2' },
  },
  {
    name: 'a __ target label',
    input: { __name__: 'http_requests_total' },
    rules: `[{source_labels: [__name__], regex: ".*_total$", target_label: __type__, replacement: counter, action: replace}]`,
    output: { __name__: 'http_requests_total', __type__: 'counter' },
  },
  {
    name: 'conf.good.yml example (BenchmarkRelabel), regex: with no value',
    input: { __meta_dns_name: 'example-some-x.com', abc: 'def', job: 'foo' },
    rules: `
- source_labels: [job, __meta_dns_name]
  regex: "(.*)some-[regex]"
  target_label: job
  replacement: foo-\${1}
- source_labels: [abc]
  target_label: cde
- replacement: static
  target_label: abc
- regex:
  replacement: static
  target_label: abc`,
    output: { __meta_dns_name: 'example-some-x.com', abc: 'static', cde: 'def', job: 'foo' },
  },
];

describe('relabeling: Prometheus model/relabel cases', () => {
  for (const c of CASES) {
    test(c.name, () => {
      const result = relabel(c.input, rules(c.rules));
      if (c.output === undefined) assert.equal(result.keep, false, 'the target is dropped');
      else {
        assert.ok(result.keep, 'the target is kept');
        assert.deepEqual({ ...result.labels }, c.output);
      }
    });
  }

  test('the input is not changed', () => {
    const input = { a: 'foo' };
    relabel(input, rules(`[{regex: "(.*)", action: labelmap, replacement: "x_$1"}, {regex: a, action: labeldrop}]`));
    assert.deepEqual(input, { a: 'foo' });
  });

  test('hashmod: MD5, last 8 bytes big-endian, as Prometheus (values above 2^63 too)', () => {
    assert.equal(hashMod('baz', 1000), 976);
    assert.equal(hashMod('foo\nbar', 1000), 734);
    // md5("") ends in ...ecf8427e; as an unsigned 64-bit number this is 0xe9800998ecf8427e
    assert.equal(hashMod('', 2 ** 52), Number(0xe9800998ecf8427en % 2n ** 52n));
  });
});

describe('relabeling: config checks (TestRelabelValidate, legacy names)', () => {
  const errorOf = (rule: string): string => {
    const errors = configErrors(`relabel_configs: [${rule}]`);
    return errors.join('\n');
  };
  const cases: [string, string | undefined][] = [
    ['{action: replace}', "requires 'target_label' value"],
    ['{action: lowercase}', "requires 'target_label' value"],
    ['{action: lowercase, target_label: "${3}"}', `"\${3}" is invalid 'target_label' for lowercase action`],
    ['{source_labels: [a], regex: "some-([^-]+)-([^,]+)", action: replace, replacement: "${1}", target_label: "${3}"}', undefined],
    ['{source_labels: [a], regex: "some-([^-]+)-([^,]+)", action: replace, replacement: "${1}", target_label: "0${3}"}', `"0\${3}" is invalid 'target_label' for replace action`],
    ['{source_labels: [a], regex: "some-([^-]+)-([^,]+)", action: replace, replacement: "${1}", target_label: "-${3}"}', `"-\${3}" is invalid 'target_label' for replace action`],
    ['{regex: "__meta_kubernetes_pod_label_(strimzi_io_.+)", action: labelmap, replacement: "$1"}', undefined],
    ['{regex: "__meta_(.+)", action: labelmap, replacement: "${1}"}', undefined],
    ['{action: hashmod, target_label: x}', 'requires non-zero modulus'],
    ['{action: labeldrop, regex: a, target_label: x}', "requires only 'regex'"],
    ['{action: keepequal, source_labels: [a], target_label: b, regex: x}', "requires only 'source_labels' and 'target_label'"],
    ['{action: uppercase, source_labels: [a], target_label: b, replacement: x}', "'replacement' can not be set"],
    ['{action: Keep, source_labels: [a], regex: x}', undefined],
    ['{action: explode}', 'unknown relabel action "explode"'],
    ['{source_labels: [a], target_label: "utf-8.label"}', `"utf-8.label" is invalid 'target_label'`],
    ['{source_labels: ["a-b"], target_label: b}', 'label name "a-b" is not valid'],
    ['{regex: "(?=x)", action: labeldrop}', 'is not valid RE2 syntax'],
    ['{regex: "(a)\\\\1", action: labeldrop}', 'is not valid RE2 syntax'],
  ];
  for (const [rule, expected] of cases) {
    test(rule, () => {
      const errors = errorOf(rule);
      if (expected === undefined) assert.equal(errors, '');
      else assert.match(errors, new RegExp(expected.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    });
  }

  test('an error names its place in the file', () => {
    assert.match(errorOf('{action: replace}'), /^test\.yaml:1:\d+: relabel_configs\[0\]: /);
  });

  test('target labels with $ references (TestTargetLabelLegacyValidity)', () => {
    const table: [string, boolean][] = [
      ['-label', false], ['label', true], ['label${1}', true], ['${1}label', true], ['${1}', true], ['${', false], ['$', false], ['${}', false],
      ['foo${', false], ['$1', true], ['asd$2asd', true], ['-foo${1}bar-', false], ['bar.foo${1}bar', false], ['_${1}_', true], ['foo${bar}foo', true],
    ];
    for (const [label, valid] of table) {
      assert.equal(relabelRule.safeParse({ source_labels: ['a'], target_label: label }).success, valid, label);
    }
  });
});

describe('relabeling: RE2 regexes, as Prometheus compiles them', () => {
  test('RE2 constructs JavaScript lacks work: (?i), (?P<name>), \\pL', () => {
    assert.ok(new RelabelRegex('(?i)abc').test('ABC'));
    assert.ok(new RelabelRegex('\\pL+').test('éa'));
    assert.deepEqual(new RelabelRegex('(?P<x>a)(b)?').groups('a')?.groups, ['a', 'a', '']);
  });

  test('a catastrophic pattern runs in linear time on a long hostile value', () => {
    const re = new RelabelRegex('(a+)+b');
    const started = performance.now();
    assert.equal(re.test('a'.repeat(5000)), false);
    assert.ok(performance.now() - started < 2000);
  });

  test('$ forms as Go expands them: $1x names group "1x", $$ is $, a lone $ stays', () => {
    const out = relabel({ a: 'foo' }, rules(`
- {source_labels: [a], regex: "(f)(o+)", target_label: b, replacement: "$1x|\${1}x|$$1|$|\${2"}
- {source_labels: [a], regex: "(f)(o+)", target_label: c, replacement: "$01|$2"}`));
    assert.ok(out.keep);
    assert.equal(out.labels['b'], '|fx|$1|$|${2');
    assert.equal(out.labels['c'], '|oo');
  });
});
