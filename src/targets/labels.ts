const INVALID = /[^a-zA-Z0-9_]/g;

/**
 * A label name from free text (a tag key, a container label): characters
 * outside [a-zA-Z0-9_] become `_`, and a leading digit gets a `_` in front.
 * Returns undefined for an empty name.
 */
export function sanitizeLabelName(name: string): string | undefined {
  const cleaned = name.replace(INVALID, '_');
  if (cleaned === '') return undefined;
  return /^[0-9]/.test(cleaned) ? `_${cleaned}` : cleaned;
}
