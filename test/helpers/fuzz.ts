import fc from 'fast-check';

/**
 * The settings every property test runs with. CI runs a fixed seed, so a red
 * run is the same run on any machine; `npm run fuzz` (FUZZ_SEED=random,
 * FUZZ_RUNS large) explores beyond it. fast-check prints the seed and the
 * shrunk counterexample of any failure: rerun it with FUZZ_SEED=<seed>, then
 * keep the input as a plain test case beside the property.
 *
 *   fc.assert(fc.property(arb, check), fuzzParameters(2000))
 */
export function fuzzParameters(defaultRuns: number): fc.Parameters<unknown> {
  const runs = Number(process.env['FUZZ_RUNS'] ?? defaultRuns);
  const seedText = process.env['FUZZ_SEED'] ?? '20261202';
  const seed = seedText === 'random' ? (Date.now() ^ (Math.random() * 0x7fffffff)) | 0 : Number(seedText);
  if (!Number.isFinite(runs) || runs < 1) throw new Error(`FUZZ_RUNS must be a positive number, got ${process.env['FUZZ_RUNS']}`);
  if (!Number.isInteger(seed)) throw new Error(`FUZZ_SEED must be an integer or "random", got ${seedText}`);
  return { numRuns: runs, seed, verbose: fc.VerbosityLevel.None, endOnFailure: false };
}
