// Scoring a model's outputs against labels (top-1, top-5, mean NLL) over an evaluation source, where an
// image whose scores are not all finite is never a hit and is counted, so a NaN model cannot score 100%.
import type { Batch, EvalSource } from './dataset.js';
import type { Evaluation, Model } from './model.js';
import { prefetchLoop } from './prefetch-loop.js';

/** An evaluation plus the images whose class scores held NaN or ±Inf (never counted as hits). */
export interface Scores extends Evaluation {
  readonly nonFinite: number;
  /** The scoring-order index (0-based) of the first such image. */
  readonly firstNonFinite?: number;
}

/** Running top-1/top-5 hits and summed NLL, fed one batch of outputs at a time. */
export class ScoreTally {
  private top1 = 0;
  private top5 = 0;
  private nll = 0;
  private nonFinite = 0;
  private firstNonFinite: number | undefined;
  count = 0;

  add(out: Float32Array, labels: Int32Array, classes: number): void {
    for (let i = 0; i < labels.length; i++) {
      const row = out.subarray(i * classes, (i + 1) * classes);
      const target = row[labels[i]];
      // NaN compares false with everything, so a NaN row would rank its label first: count it instead.
      if (!row.every(Number.isFinite)) {
        this.nonFinite++;
        this.firstNonFinite ??= this.count + i;
        this.nll -= target;
        continue;
      }
      let above = 0; // classes scored strictly higher than the label: ties go the label's way
      for (let c = 0; c < classes; c++) if (row[c] > target) above++;
      if (above === 0) this.top1++;
      if (above < 5) this.top5++;
      this.nll -= target;
    }
    this.count += labels.length;
  }

  result(): Scores {
    const n = this.count;
    return {
      top1: n ? this.top1 / n : 0,
      top5: n ? this.top5 / n : 0,
      loss: n ? this.nll / n : NaN,
      count: n,
      nonFinite: this.nonFinite,
      ...(this.firstNonFinite !== undefined ? { firstNonFinite: this.firstNonFinite } : {}),
    };
  }
}

/**
 * Top-1/top-5 and mean NLL in eval mode over every image a source yields (no partial batch dropped). With
 * `prefetch` (default on cuda) each batch is handed to the model while the one before it runs, so that its
 * host→device copy overlaps that inference (Model.prefetch, docs/design.md#staged-input).
 */
export async function evaluateSource(model: Model, source: EvalSource, onBatch?: (done: number) => void, prefetch = model.device === 'cuda'): Promise<Scores> {
  const tally = new ScoreTally();
  const take = (out: Float32Array, b: Batch): boolean => {
    tally.add(out, b.labels, model.outputElements);
    onBatch?.(tally.count);
    return false;
  };
  const batches = withImages(source.batches(model.maxBatch));
  await prefetchLoop({ model, batches, prefetch, stageFor: 'inference', run: (b) => model.infer(b.images, b.count), take });
  return tally.result();
}

/** The batches that hold an image: an evaluation batch whose every file was unreadable holds none. */
async function* withImages(batches: AsyncIterable<Batch>): AsyncGenerator<Batch> {
  for await (const b of batches) if (b.count > 0) yield b;
}

/** The first `limit` images of a source, in its order (a quick test pass during training). */
export function firstImagesOf(source: EvalSource, limit: number): EvalSource {
  return {
    name: `the first ${Math.min(limit, source.count)} of ${source.name}`,
    count: Math.min(limit, source.count),
    async *batches(batch: number) {
      let left = limit;
      for await (const b of source.batches(batch)) {
        if (left <= 0) break;
        const n = Math.min(b.count, left);
        const per = b.images.length / Math.max(1, b.count);
        yield n === b.count ? b : { images: b.images.subarray(0, n * per), labels: b.labels.subarray(0, n), count: n };
        left -= n;
      }
    },
    ...(source.takeSkipped ? { takeSkipped: () => source.takeSkipped!() } : {}),
  };
}

/** The sentence a caller prints when some outputs were not finite (undefined when all were). */
export function nonFiniteProblem(s: Scores, sourceName: string): string | undefined {
  if (s.nonFinite === 0) return undefined;
  return (
    `${s.nonFinite} of ${s.count} images of ${sourceName} got non-finite (NaN or Inf) class scores, counted as misses; ` +
    `the first is image ${s.firstNonFinite} (0-based, in scoring order): the weights hold NaN/Inf or overflow`
  );
}
