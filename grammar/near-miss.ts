// "Did you mean …?": the known word closest to a misspelled one, for every hint of the front end.

/** Edit distance counting a swap of two neighbouring letters as one edit (`cnov` → `conv`), as typos make them. */
export function editDistance(a: string, b: string): number {
  // d[i][j] = distance between a[0..i) and b[0..j); three rows suffice for the swap case.
  let beforePrevious: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      let best = Math.min(previous[j] + 1, current[j - 1] + 1, substitution);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, beforePrevious[j - 2] + 1);
      current.push(best);
    }
    beforePrevious = previous;
    previous = current;
  }
  return previous[b.length];
}

/** The candidate the name most likely meant, or undefined when none is near enough to suggest. */
export function closest(name: string, candidates: readonly string[]): string | undefined {
  // `batchsize` means `batch` and `max` means `maxpool`, though other words are fewer edits away.
  const lower = name.toLowerCase();
  const prefix = candidates.find((c) => Math.min(c.length, name.length) >= 3 && (lower.startsWith(c.toLowerCase()) || c.toLowerCase().startsWith(lower)));
  if (prefix) return prefix;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(lower, c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(name.length / 3)) ? best : undefined;
}
