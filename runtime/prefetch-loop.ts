// The loop of training epochs and evaluation passes over a batch source: with `prefetch`, each batch is
// handed to the model while the step before it runs (Model.prefetch, docs/design.md#staged-input), and
// however the loop ends, the batch it staged for a step that never came is discarded.
import type { Batch } from './dataset.js';
import type { Model } from './model.js';

export interface PrefetchLoop<R> {
  readonly model: Model;
  readonly batches: AsyncIterable<Batch>;
  readonly prefetch: boolean;
  /** The call `run` makes, which takes the staged batch: a training step (images and labels staged) or an inference (images). */
  readonly stageFor: 'training' | 'inference';
  /** Queues the model's call on a batch whose labels are its own copy (the sources reuse their buffers); awaited once the next batch is staged. */
  readonly run: (b: Batch) => Promise<R>;
  /** Takes each result in batch order; true stops the loop (after this batch, with a next one perhaps staged). */
  readonly take: (result: R, b: Batch) => boolean | Promise<boolean>;
}

/**
 * Runs `run` then `take` on every batch, in order. Prefetching, batch k+1 is fetched and staged after
 * step k is queued and before it is awaited, so that its copy overlaps step k; otherwise it is fetched
 * after `take`. On every way out (the end, a stop, a throw from the source, `run` or `take`) the source's
 * iterator is closed as for-await would and, when prefetching, Model.discardPrefetched drops whatever
 * is still staged, so the model's next call runs on the inputs it is given.
 */
export async function prefetchLoop<R>(loop: PrefetchLoop<R>): Promise<void> {
  const { model, prefetch } = loop;
  const batches = loop.batches[Symbol.asyncIterator]();
  const fetch = async (): Promise<IteratorResult<Batch>> => {
    const r = await batches.next();
    if (prefetch && !r.done) model.prefetch(r.value.images, loop.stageFor === 'training' ? r.value.labels : undefined);
    return r;
  };
  let next: IteratorResult<Batch> | undefined;
  try {
    next = await fetch();
    while (!next.done) {
      const b = { ...next.value, labels: next.value.labels.slice() };
      const running = loop.run(b);
      running.catch(() => {}); // awaited below; a throw from fetch() leaves it settling on its own
      if (prefetch) next = await fetch();
      if (await loop.take(await running, b)) break;
      if (!prefetch) next = await fetch();
    }
  } catch (e) {
    await close(loop, batches, next).catch(() => {}); // the first error is the one that explains
    throw e;
  }
  await close(loop, batches, next);
}

/** Closes the source early (unless it ended or never started) and drops what is staged, both even if the other fails. */
async function close<R>(loop: PrefetchLoop<R>, batches: AsyncIterator<Batch>, next: IteratorResult<Batch> | undefined): Promise<void> {
  try {
    if (next && !next.done) await batches.return?.(undefined);
  } finally {
    if (loop.prefetch) await loop.model.discardPrefetched();
  }
}
