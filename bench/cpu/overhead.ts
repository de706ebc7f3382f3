// The cost of one call into each engine, apart from its kernels: a model of two tiny kernels (a 2→2
// linear and a log-softmax, well under a microsecond of work) run at batch 1 through nincc's `infer`
// (argument checks, the input copied into the arena, the run — on the JS thread where plan.json's
// inlineMaxBatch covers batch 1, as it does this probe's, else on the addon's worker thread — the output
// copied out, the promise resolved) and through onnxruntime-node's `session.run`.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { buildArtifact } from '../../compiler/build.js';
import { compileSpec } from '../../compiler/pipeline.js';
import { load } from '../../runtime/model.js';
import { exportOnnx } from '../../runtime/onnx/export-onnx.js';
import { median } from './report.js';

const PROBE = `
model call_probe {
  input 1x1x2
  view(-1)  linear(2, 2)  logsoftmax
}
`;

export interface CallOverhead {
  readonly ninccMicros: number; // median of one infer() at batch 1
  readonly ortMicros: number; // median of one session.run() at batch 1
  readonly calls: number;
  /** Where nincc's call ran: the JS thread (plan.json inlineMaxBatch ≥ 1) or the addon's worker thread. */
  readonly ninccThread: 'JS' | 'worker';
}

export async function measureCallOverhead(work: string, threads: number, calls = 2000): Promise<CallOverhead> {
  const r = compileSpec(PROBE, 'call_probe.model');
  if (!r.model) throw new Error(`call_probe: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  const dir = join(work, 'call_probe');
  mkdirSync(dir, { recursive: true });
  buildArtifact(r.model, PROBE, { outDir: join(dir, 'artifact'), target: 'cpu', maxBatch: 1 });
  const m = await load(join(dir, 'artifact'), { device: 'cpu', seed: 1 });
  const plan = JSON.parse(readFileSync(join(dir, 'artifact', 'plan.json'), 'utf8')) as { programs?: { infer?: { inlineMaxBatch?: number } } };
  const ninccThread = (plan.programs?.infer?.inlineMaxBatch ?? 0) >= 1 ? 'JS' : 'worker';
  const onnx = join(dir, 'call_probe.onnx');
  writeFileSync(onnx, exportOnnx(r.model, new Map(m.tensorNames().map((t) => [t, m.getTensor(t)]))));
  const session = await ort.InferenceSession.create(onnx, { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1 });
  try {
    const x = Float32Array.of(0.25, -0.5);
    const feeds = { images: new ort.Tensor('float32', x, [1, 1, 1, 2]) };
    const timeOf = async (run: () => Promise<unknown>): Promise<number> => {
      for (let i = 0; i < 200; i++) await run();
      const each: number[] = [];
      for (let i = 0; i < calls; i++) {
        const t0 = process.hrtime.bigint();
        await run();
        each.push(Number(process.hrtime.bigint() - t0) / 1e3);
      }
      return median(each);
    };
    return { ninccMicros: await timeOf(() => m.infer(x)), ortMicros: await timeOf(() => session.run(feeds)), calls, ninccThread };
  } finally {
    m.dispose();
    await session.release();
  }
}
