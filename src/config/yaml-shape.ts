import { isAlias, isMap, isNode, isPair, isScalar, isSeq } from 'yaml';
import type { Alias, Document, Node as YamlNode } from 'yaml';
import type { IssuePath } from './issues.js';

// The parsed YAML document as load.ts walks it: what it would become once
// every alias is resolved (bounded before anything converts it), and where in
// the file a path lies. The bounds are far above what a real config needs
// (a dozen levels, a few aliases): they turn a mistake into an error message.

/** Values that aliases may add to the document, all aliases together (a YAML alias bomb adds billions). */
export const MAX_ALIAS_VALUES = 100_000;
/** Levels of nesting, counted through aliases. */
export const MAX_DEPTH = 100;

interface Shape {
  /** What each alias refers to: the last node with its anchor before it. */
  readonly aliasTargets: Map<Alias, YamlNode>;
  readonly problem?: { node: YamlNode; path: IssuePath; message: string } | undefined;
}

/**
 * Walks the document once, in the order aliases resolve, and measures what
 * it becomes once every alias is replaced by its anchor's value: how many
 * values the aliases add, and how deep it nests. Refuses, with the place,
 * what would be too big to convert (an alias bomb), too deep to walk, or
 * impossible: an alias with no anchor before it, a value that contains
 * itself, a list or map as a key.
 */
export function checkShape(doc: Document): Shape {
  interface Anchored {
    readonly node: YamlNode;
    /** Undefined while the anchored node is still being walked. */
    measure?: { size: number; height: number };
  }
  const anchors = new Map<string, Anchored>();
  const aliasTargets = new Map<Alias, YamlNode>();
  let added = 0;
  let problem: Shape['problem'];
  const refuse = (node: YamlNode, path: IssuePath, message: string): { size: number; height: number } => {
    problem ??= { node, path, message };
    return { size: 0, height: 0 };
  };
  const measure = (node: unknown, path: IssuePath, depth: number, isKey: boolean): { size: number; height: number } => {
    if (problem || !isNode(node)) return { size: 0, height: 0 };
    if (depth > MAX_DEPTH) return refuse(node, path, `nested deeper than ${MAX_DEPTH} levels: a config needs a dozen at most`);
    if (isAlias(node)) {
      const anchored = anchors.get(node.source);
      if (!anchored) return refuse(node, path, `alias *${node.source} has no anchor &${node.source} before it`);
      if (!anchored.measure) return refuse(node, path, `alias *${node.source} is inside the value of its own anchor &${node.source}: a value cannot contain itself`);
      if (isKey && !isScalar(anchored.node)) return refuse(node, path, `a key must be a plain value; alias *${node.source} is a ${isSeq(anchored.node) ? 'list' : 'map'}`);
      aliasTargets.set(node, anchored.node);
      added += anchored.measure.size;
      if (added > MAX_ALIAS_VALUES) {
        return refuse(node, path, `aliases expand the config by more than ${MAX_ALIAS_VALUES} values (nested anchors, as in a "billion laughs" YAML bomb): use fewer aliases, or write the values out`);
      }
      if (depth + anchored.measure.height > MAX_DEPTH) return refuse(node, path, `alias *${node.source} nests the config deeper than ${MAX_DEPTH} levels`);
      return anchored.measure;
    }
    if (isKey && !isScalar(node)) return refuse(node, path, `a key must be a plain value, not a ${isSeq(node) ? 'list' : 'map'}`);
    let anchored: Anchored | undefined;
    if (node.anchor) {
      anchored = { node };
      anchors.set(node.anchor, anchored);
    }
    let size = 1;
    let height = 0;
    const add = (m: { size: number; height: number }): void => {
      size += m.size;
      height = Math.max(height, m.height);
    };
    if (isMap(node)) {
      for (const pair of node.items) {
        add(measure(pair.key, path, depth + 1, true));
        add(measure(pair.value, [...path, keyName(pair.key)], depth + 1, false));
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => add(measure(item, [...path, i], depth + 1, false)));
    }
    const result = { size, height: height + 1 };
    if (anchored) anchored.measure = result;
    return result;
  };
  measure(doc.contents, [], 0, false);
  return { aliasTargets, problem };
}

function keyName(key: unknown): string {
  return isScalar(key) ? String(key.value) : '?';
}

/** Every path at which each wanted node appears, through aliases. checkShape has bounded the walk. */
export function pathsOf(doc: Document, wanted: ReadonlySet<YamlNode>, aliasTargets: ReadonlyMap<Alias, YamlNode>): Map<YamlNode, IssuePath[]> {
  const found = new Map<YamlNode, IssuePath[]>();
  if (wanted.size === 0) return found;
  const walk = (node: unknown, path: IssuePath): void => {
    if (isAlias(node)) {
      walk(aliasTargets.get(node), path);
      return;
    }
    if (!isNode(node)) return;
    if (wanted.has(node)) {
      const paths = found.get(node);
      if (paths) paths.push(path);
      else found.set(node, [path]);
    }
    if (isMap(node)) for (const pair of node.items) walk(pair.value, [...path, keyName(pair.key)]);
    else if (isSeq(node)) node.items.forEach((item, i) => walk(item, [...path, i]));
  };
  walk(doc.contents, []);
  return found;
}

/** The node at a path (or its key), for an error's line and column. */
export function nodeAt(doc: Document, path: IssuePath, onKey: boolean): { node: YamlNode | undefined; keyNode: YamlNode | undefined } {
  let node: unknown = doc.contents;
  let keyNode: YamlNode | undefined;
  let last: YamlNode | undefined = doc.contents ?? undefined;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    keyNode = undefined;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      keyNode = pair.key as YamlNode;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
    } else {
      break;
    }
    if (node && typeof node === 'object' && 'range' in node) last = node as YamlNode;
    else if (keyNode && i === path.length - 1) last = keyNode;
  }
  return { node: last, keyNode: onKey ? keyNode : undefined };
}
