/**
 * The kind of a `discovery:` or `repositories:` item and its block: the
 * first of a registry's kinds the item has a block under. Every lookup of an
 * item's kind goes through here and walks the registry's keys, so a kind
 * added to a registry is never left out of one; validation has seen that
 * there is exactly one. Undefined for an item with none.
 */
export function kindOf<K extends string, E extends { readonly [P in K]?: unknown }>(
  kinds: readonly K[],
  entry: E,
): { readonly kind: K; readonly block: NonNullable<E[K]> } | undefined {
  for (const kind of kinds) {
    const block = entry[kind];
    if (block !== undefined && block !== null) return { kind, block };
  }
  return undefined;
}
