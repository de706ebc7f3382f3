// How many images a cpu inference call may take and still run on the JS thread itself (plan.json
// programs.infer `inlineMaxBatch`, issue #19). A call otherwise runs on a libuv worker thread and settles
// a promise (runtime/binding/run_worker.cc): the hop there and back costs the same at any size, about
// 0.01 ms of nin-fashion's 0.17 ms batch-1 call (166.1 -> 155.4 us, bench/logs/i19u-inline-ab.out), where
// onnxruntime-node runs its session on the JS thread. The hop costs far more where another process's threads
// hold a core, as PyTorch's OpenMP workers spin for about 2 ms after each of its calls (bench/cpu.ts's
// interleaved pass): the worker thread, woken while the JS thread goes to sleep, waits its turn for a core
// (a scheduler slice), and nin-fashion at batch 16 took 2.88 ms on the worker against 1.43 ms inline
// (1.49 against 1.43 with no neighbour; bench/RESULTS.md i19w). Inline, the
// call blocks the event loop for its length, as onnxruntime-node's does, so calls up to about 1.5 ms on the
// 2-core VM take it: at most INLINE_CALL_MAX_MACS multiply-adds (nin-fashion up to batch 21, NIN never).

/** The most multiply-adds (images × macsPerImage) an inline call may do. */
export const INLINE_CALL_MAX_MACS = 256 * 2 ** 20;

/** The largest batch (0: none) whose inference call runs inline. `on` false: the ablation inlineCall. */
export function inlineCallMaxBatch(macsPerImage: number, maxBatch: number, on: boolean): number {
  if (!on || macsPerImage <= 0) return 0;
  return Math.min(maxBatch, Math.floor(INLINE_CALL_MAX_MACS / macsPerImage));
}

/** report.txt's lines on it. */
export function inlineCallReport(macsPerImage: number, inlineMaxBatch: number | undefined): string[] {
  const mmacs = (macsPerImage / 2 ** 20).toFixed(1);
  return [
    'CPU inference calls (runtime/model.ts, plan.json programs.infer inlineMaxBatch):',
    inlineMaxBatch
      ? `  a call of at most ${inlineMaxBatch} image${inlineMaxBatch === 1 ? '' : 's'} runs on the JS thread (no worker-thread hop: about 0.01 ms less a call, and no wait for a core where another process's threads spin; it blocks the event loop while it runs): ${mmacs} Mi multiply-adds an image, at most ${INLINE_CALL_MAX_MACS / 2 ** 20} Mi a call inline. Larger calls run on a worker thread.`
      : `  every call runs on a worker thread: ${macsPerImage > INLINE_CALL_MAX_MACS ? `${mmacs} Mi multiply-adds an image is over the ${INLINE_CALL_MAX_MACS / 2 ** 20} Mi a call may do inline` : macsPerImage <= 0 ? 'no conv or linear layer to size a call by' : 'the ablation inlineCall is off'}.`,
  ];
}
