// `nincc bench DIR`: measured images/s and GFLOP/s for inference (batch 1 and 16) and a training step.
import { load, syntheticImages } from '../../runtime/model.js';
import { intOption, onePositional, type Command } from '../command.js';
import { artifactDevice, deviceOption, prepareArtifact } from '../artifact-arg.js';

interface Timing { readonly label: string; readonly batch: number; readonly median: number; readonly min: number; readonly max: number; readonly flopsPerImage: number }

async function time(runs: number, fn: () => Promise<unknown>): Promise<{ median: number; min: number; max: number }> {
  await fn(); // warm-up: first-touch of the arena, thread pool start
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const s = process.hrtime.bigint();
    await fn();
    t.push(Number(process.hrtime.bigint() - s) / 1e9);
  }
  t.sort((a, b) => a - b);
  return { median: t[Math.floor(t.length / 2)], min: t[0], max: t[t.length - 1] };
}

export const benchCommand: Command = {
  name: 'bench',
  summary: 'Time a built model: inference images/s at batch 1 and 16 and training-step images/s, with GFLOP/s (median of repeated runs after a warm-up).',
  usage: 'DIR|FILE [--device cpu] [--runs N] [--train-batch N]',
  details: 'FLOPs count 2 per multiply-accumulate of conv and linear layers; a training step counts 3× the forward pass (forward, data gradient, weight gradient).',
  options: {
    device: { type: 'string', value: 'DEV', help: "cpu, emu (the generated CUDA on the SIMT emulator) or cuda; default: the artifact's target (a spec FILE is built for cpu unless this says otherwise)" },
    runs: { type: 'string', value: 'N', help: 'timed runs per case (default 10)' },
    'train-batch': { type: 'string', value: 'N', help: 'training batch (default 16, at most the artifact maximum)' },
  },
  async run(args) {
    // Every option is checked before anything is built or loaded.
    const target = onePositional(args, benchCommand, 'artifact directory');
    const requested = deviceOption(args);
    const runs = intOption(args, 'runs') ?? 10;
    const trainBatch = intOption(args, 'train-batch') ?? 16;
    const dir = await prepareArtifact(target, { maxBatch: 16, device: requested ?? 'cpu' });
    const model = await load(dir, { device: requested ?? artifactDevice(dir) });
    try {
      const flops = 2 * (model.plan as { macsPerImage?: number }).macsPerImage!;
      const per = model.imageElements;
      const results: Timing[] = [];
      for (const batch of [1, 16].filter((b) => b <= model.maxBatch)) {
        const x = syntheticImages(model, batch, (i) => Math.sin(i * 0.37));
        const t = await time(runs, () => model.infer(x));
        results.push({ label: 'infer', batch, ...t, flopsPerImage: flops });
      }
      if (model.trainable) {
        const batch = Math.min(trainBatch, model.maxBatch);
        const x = syntheticImages(model, batch, (i) => Math.cos(i * 0.11));
        const y = Int32Array.from({ length: batch }, (_, i) => i % model.info.classes);
        // lr 0 keeps the weights (and so the timing) steady across runs.
        const t = await time(runs, () => model.trainStep(x, y, { lr: 0 }));
        results.push({ label: 'train step', batch, ...t, flopsPerImage: 3 * flops });
      }
      process.stdout.write(`${model.info.model} on ${model.device}: ${(flops / 1e9).toFixed(3)} GFLOP forward per image, ${runs} runs each\n`);
      process.stdout.write('case         batch   images/s (median, min–max)      GFLOP/s   ms/batch\n');
      for (const r of results) {
        const ips = r.batch / r.median;
        const spread = `${(r.batch / r.max).toFixed(1)}–${(r.batch / r.min).toFixed(1)}`;
        process.stdout.write(`${r.label.padEnd(12)} ${String(r.batch).padStart(5)}   ${ips.toFixed(1).padStart(9)} (${spread})`.padEnd(54) + `${((ips * r.flopsPerImage) / 1e9).toFixed(1).padStart(8)}   ${(r.median * 1000).toFixed(2).padStart(8)}\n`);
      }
      return 0;
    } finally {
      await model.dispose();
    }
  },
};
