// The exact integer limits on sizes, parameter counts and MACs (docs/diagnostics.md, "Limits"), counted
// with BigInt: a product of int32 arguments can pass 2^53, where a double would silently round it.

/** Elements of one image's activation at any layer, and parameters of one layer: what an int32 index reaches. */
export const maxElementsPerImage = 2 ** 31 - 1;
/** Parameters of the whole model (the param, grad and momentum spaces each hold this many floats). */
export const maxParams = 2 ** 31 - 1;
/** Multiply-accumulates per image: beyond 2^53 the report's figure would not be exact. */
export const maxMacs = Number.MAX_SAFE_INTEGER;

export const product = (factors: readonly number[]): bigint => factors.reduce((p, f) => p * BigInt(f), 1n);
export const exceeds = (count: bigint, limit: number): boolean => count > BigInt(limit);
