// How a global batch and the gradient space are divided between ranks: pure functions of counts.

/** Rank `rank`'s contiguous share of `count` items among `size` ranks: [first, first + count). Shares differ by at most one. */
export function rankShare(count: number, rank: number, size: number): { first: number; count: number } {
  const first = Math.floor((count * rank) / size);
  const end = Math.floor((count * (rank + 1)) / size);
  return { first, count: end - first };
}

/** An element range of the gradient space reduced in one collective. */
export interface Bucket {
  readonly offset: number;
  readonly size: number;
  readonly tensors: readonly string[];
}

/**
 * The parameter tensors grouped into buckets of at least `bucketElements` elements (the last may be
 * smaller), from the last layer to the first: the order backward produces gradients, so a reducer that
 * overlaps with backward could start on the first bucket first. Each bucket spans its tensors' offsets,
 * padding between them included, and the buckets tile the tensors' whole span.
 */
export function gradientBuckets(params: readonly { name: string; offset: number; size: number }[], bucketElements: number): Bucket[] {
  if (!(bucketElements >= 1)) throw new RangeError(`bucketElements must be at least 1, got ${bucketElements}`);
  const byOffset = [...params].sort((a, b) => b.offset - a.offset);
  const buckets: Bucket[] = [];
  let end = byOffset.length > 0 ? byOffset[0].offset + byOffset[0].size : 0;
  let names: string[] = [];
  for (let i = 0; i < byOffset.length; i++) {
    const t = byOffset[i];
    names.push(t.name);
    const size = end - t.offset;
    if (size >= bucketElements || i === byOffset.length - 1) {
      buckets.push({ offset: t.offset, size, tensors: names });
      end = t.offset;
      names = [];
    }
  }
  return buckets;
}
