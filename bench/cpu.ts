// CPU benchmark: nincc `cpu` against onnxruntime-node on the same weights, in one process.
// Build and run:  npm run bench:cpu (build:native, tsc, then node dist/bench/cpu.js [options]; --help lists them: bench/cpu/options.ts)
// For each spec (models/nin.model, models/nin-fashion.model and models/resnet-50.model by default) it builds the artifact
// (BN folded for inference), makes weights whose output depends on the input, exports them to ONNX,
// and checks that both engines agree (1e-4 of the output's scale) at batch 1 and 16. Then:
//  1. interleaved: inference at batch 1 and 16 in both engines and nincc's training step at batch 16,
//     run by run (the order alternating each round) after a warm-up; onnxruntime with its idle
//     spin-wait off, since with it on its pool threads keep a core busy for tens of milliseconds
//     after each run, that is during nincc's next run (measured: 26 ms instead of 14 ms per NIN image);
//  2. standalone: each engine alone for a block of runs, onnxruntime with its default settings;
//  3. interleaved again, inference only, with onnxruntime spinning as nincc's pool does (each spins a
//     little after a run), so no engine's comparison rests on the spin choice.
// Both engines get `nproc` threads (nincc's OpenMP-configured pool, onnxruntime's intra-op pool, the
// default CPU provider). Where python3 imports torch (installed here by scripts/install-torch.sh when
// missing; NINCC_BENCH_TORCH=0 leaves it out), PyTorch eager runs the same weights in NCHW and in
// channels_last with as many threads (bench/cpu/torch-engine.ts): inference at batch 1 and 16 and the
// training step at batch 16, its outputs and loss checked against nincc's first, in both passes. Prints medians, min–max, nincc/onnxruntime ratios, GFLOP/s and % of peak,
// and each engine's cost per call apart from its kernels (bench/cpu/overhead.ts).
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { packageRoot } from '../compiler/package-root.js';
import { load, type Model } from '../runtime/model.js';
import { peakOf, summarizeProbe } from './cpu/fma-probe-trust.js';
import { describeMachine, machineLines, probeLines, runFmaProbe } from './cpu/machine.js';
import { CPU_BENCH_USAGE, type CpuBenchOptions, parseCpuBenchArgs } from './cpu/options.js';
import { images, prepareSubject, type Subject } from './cpu/subjects.js';
import { measureCallOverhead, type CallOverhead } from './cpu/overhead.js';
import { median, reportLines, type Timed } from './cpu/report.js';
import { LAYOUTS, TorchEngine, torchAvailable } from './cpu/torch-engine.js';
import { refuseStaleAddon } from './addon-fresh.js';

/** The command line's options; --help prints the usage, and a bad option its error and the usage, and both exit. */
function commandLine(): CpuBenchOptions {
  const parsed = parseCpuBenchArgs(process.argv.slice(2));
  if (parsed === 'help') {
    console.log(CPU_BENCH_USAGE);
    process.exit(0);
  }
  if ('error' in parsed) {
    console.error(`bench/cpu.js: ${parsed.error}\n${CPU_BENCH_USAGE}`);
    process.exit(2);
  }
  return parsed;
}
const parsed = commandLine();
const { runs, warmup, standaloneRuns, seed } = parsed;
const threads = availableParallelism();
// libgomp reads this when the first kernel library loads; nproc is its default anyway, set so it is said.
process.env.OMP_NUM_THREADS ??= String(threads);

/** A case: `run` once, or `measure` once giving its seconds (PyTorch's runs are timed in its own process). */
type Case = Timed & { readonly run: () => Promise<unknown>; readonly measure?: () => Promise<number> };

/** The SGD step both engines time: lr 0 keeps the weights, and so the work, the same from run to run. */
const STEP = { lr: 0, momentum: 0.9, weightDecay: 5e-4 };

/** max |a − b| ≤ 1e-4 · max(1, max |b|) (test/onnx-export.test.ts's rule), and rows that differ between images. */
function agreement(onnx: Float32Array, ref: Float32Array, n: number): { diff: number; scale: number; ok: boolean; informative: boolean } {
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs(onnx[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  const per = ref.length / n;
  let between = 0;
  for (let i = 0; i < per && n > 1; i++) between = Math.max(between, Math.abs(ref[i] - ref[per + i]));
  return { diff, scale, ok: onnx.length === ref.length && diff <= 1e-4 * scale, informative: n === 1 || between > 1e-4 };
}

const sessionOptions = (spinning: boolean): ort.InferenceSession.SessionOptions => ({
  executionProviders: ['cpu'],
  intraOpNumThreads: threads,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
  ...(spinning ? {} : { extra: { session: { intra_op: { allow_spinning: '0' } } } }),
});

async function time(c: Case): Promise<void> {
  if (c.measure) {
    c.seconds.push(await c.measure());
    return;
  }
  const t0 = process.hrtime.bigint();
  await c.run();
  c.seconds.push(Number(process.hrtime.bigint() - t0) / 1e9);
}

/** The PyTorch engine, installing python3-torch first where it is missing and that is possible; or why there is none. */
function startTorch(): { engine?: TorchEngine; line: string } {
  let found = torchAvailable();
  if (!found.ok && process.env.NINCC_BENCH_TORCH !== '0') {
    const r = spawnSync('bash', [resolve(packageRoot(), 'scripts/install-torch.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (r.status === 0) found = torchAvailable();
  }
  if (!found.ok) return { line: `PyTorch: no column (${found.reason})` };
  return { engine: new TorchEngine(found.python, threads), line: '' };
}

async function main(): Promise<number> {
  refuseStaleAddon();
  const machine = describeMachine();
  const lines = machineLines(machine);
  lines.push(`threads: nincc OMP_NUM_THREADS=${process.env.OMP_NUM_THREADS}, onnxruntime-node ${(ort as { env?: { versions?: { common?: string } } }).env?.versions?.common ?? ''} intraOpNumThreads=${threads} (default CPU provider)`);
  for (const l of lines) console.log(l);

  const torch = startTorch();
  if (torch.line) console.log(torch.line);
  const interleaved: Case[] = [];
  const bothSpin: Case[] = []; // pass 3
  const standalone: { nincc: Case[]; ort: Case[]; torch: Case[] } = { nincc: [], ort: [], torch: [] };
  const models: Model[] = [];
  const sessions: ort.InferenceSession[] = [];
  let failed = false;
  try {
    for (const spec of parsed.models) {
      const subject: Subject = await prepareSubject(resolve(packageRoot(), spec), resolve(packageRoot(), parsed.work), 16, seed);
      const nincc = await load(subject.dir, { device: 'cpu', weights: subject.weights });
      const trainer = await load(subject.dir, { device: 'cpu', weights: subject.weights }); // its running stats move
      models.push(nincc, trainer);
      const quiet = await ort.InferenceSession.create(subject.onnx, sessionOptions(false));
      const spinning = await ort.InferenceSession.create(subject.onnx, sessionOptions(true));
      sessions.push(quiet, spinning);
      const input = subject.model.input;
      const base = { model: subject.name, flopsPerImage: subject.flopsPerImage };
      const work = resolve(packageRoot(), parsed.work, subject.name);
      const torchEngine = torch.engine;
      if (torchEngine) console.log(`${subject.name}: ${await torchEngine.load(subject.name, subject.dir, subject.weights, threads)}`);
      for (const batch of [1, 16]) {
        const x = images(batch, input, 100 + batch);
        const feeds = { images: new ort.Tensor('float32', x, [batch, ...input]) };
        const ref = await nincc.infer(x);
        for (const [name, session] of [['quiet', quiet], ['default', spinning]] as const) {
          const got = (await session.run(feeds)).output.data as Float32Array;
          const a = agreement(got, ref, batch);
          const verdict = a.ok && a.informative ? 'agree' : a.ok ? 'AGREE BUT OUTPUT DOES NOT DEPEND ON THE INPUT' : 'DISAGREE';
          if (name === 'quiet') console.log(`${subject.name} batch ${batch}: max |onnxruntime − nincc| = ${a.diff.toExponential(2)} (scale ${a.scale.toFixed(2)}, limit ${(1e-4 * a.scale).toExponential(2)}): ${verdict}`);
          if (!a.ok || !a.informative) failed = true;
        }
        const infer = { ...base, what: 'infer', batch } as const;
        interleaved.push({ ...infer, engine: 'nincc', run: () => nincc.infer(x), seconds: [] });
        interleaved.push({ ...infer, engine: 'onnxruntime', run: () => quiet.run(feeds), seconds: [] });
        bothSpin.push({ ...infer, engine: 'nincc', run: () => nincc.infer(x), seconds: [] });
        bothSpin.push({ ...infer, engine: 'onnxruntime', run: () => spinning.run(feeds), seconds: [] });
        standalone.nincc.push({ ...infer, engine: 'nincc', run: () => nincc.infer(x), seconds: [] });
        standalone.ort.push({ ...infer, engine: 'onnxruntime', run: () => spinning.run(feeds), seconds: [] });
        if (torchEngine) {
          for (const layout of LAYOUTS) {
            const got = await torchEngine.infer(subject.name, layout, x, batch, input, work);
            const a = agreement(got, ref, batch);
            console.log(`${subject.name} batch ${batch}: max |PyTorch ${layout} − nincc| = ${a.diff.toExponential(2)} (limit ${(1e-4 * a.scale).toExponential(2)}): ${a.ok ? 'agree' : 'DISAGREE'}`);
            if (!a.ok) failed = true;
            const id = `${subject.name}-infer-${batch}-${layout}`;
            await torchEngine.prepareCase({ id, name: subject.name, layout, what: 'infer', batch, shape: input, images: x, work });
            for (const list of [interleaved, standalone.torch]) list.push({ ...infer, engine: 'pytorch', layout, run: () => torchEngine.time(id, 1), measure: async () => (await torchEngine.time(id, 1))[0], seconds: [] });
          }
        }
      }
      if (trainer.trainable) {
        const x = images(16, input, 7);
        const y = Int32Array.from({ length: 16 }, (_, i) => i % trainer.info.classes);
        const step = { ...base, what: 'train', batch: 16, engine: 'nincc' } as const;
        interleaved.push({ ...step, run: () => trainer.trainStep(x, y, STEP), seconds: [] });
        standalone.nincc.push({ ...step, run: () => trainer.trainStep(x, y, STEP), seconds: [] });
        if (torchEngine) {
          const { loss } = await trainer.trainStep(x, y, STEP);
          for (const layout of LAYOUTS) {
            const id = `${subject.name}-train-16-${layout}`;
            const theirs = (await torchEngine.prepareCase({ id, name: subject.name, layout, what: 'train', batch: 16, shape: input, images: x, labels: Array.from(y), momentum: STEP.momentum, weightDecay: STEP.weightDecay, work }))!;
            const ok = Math.abs(theirs - loss) <= 1e-4 * Math.max(1, Math.abs(loss));
            console.log(`${subject.name} training step at batch 16: loss PyTorch ${layout} ${theirs.toFixed(6)}, nincc ${loss.toFixed(6)}: ${ok ? 'agree' : 'DISAGREE'}`);
            if (!ok) failed = true;
            for (const list of [interleaved, standalone.torch]) list.push({ ...step, engine: 'pytorch', layout, run: () => torchEngine.time(id, 1), measure: async () => (await torchEngine.time(id, 1))[0], seconds: [] });
          }
        }
      }
    }
    if (failed) {
      console.log('the engines do not agree: no timing');
      return 1;
    }
    const interleave = async (cases: Case[]) => {
      for (let i = 0; i < warmup; i++) for (const c of cases) await time(c);
      for (const c of cases) c.seconds.length = 0;
      for (let r = 0; r < runs; r++) {
        // Alternate the order, so neither engine always runs right after the other.
        for (const c of r % 2 ? [...cases].reverse() : cases) await time(c);
      }
    };
    await interleave(interleaved);
    // Standalone blocks: each case alone, back to back; onnxruntime with its default spinning.
    for (const block of [standalone.nincc, standalone.ort, standalone.torch]) {
      for (const c of block) {
        for (let i = 0; i < warmup; i++) await time(c);
        c.seconds.length = 0;
        for (let r = 0; r < standaloneRuns; r++) await time(c);
      }
    }
    // The probe again after the timed runs: the peak is trusted only if both probes pass and agree.
    const afterRows = runFmaProbe(threads);
    const after = summarizeProbe(afterRows);
    for (const l of probeLines(afterRows, after, 'after the runs')) console.log(l);
    const peak = peakOf(machine.probe, after);
    console.log(peak.untrusted ? `% peak: not printed: ${peak.untrusted}` : `% peak: of ${peak.gflops.toFixed(0)} GFLOP/s, the higher all-thread probe`);
    // The tables refuse too, pointing here rather than repeating the reasons.
    const tablePeak = peak.untrusted ? { ...peak, untrusted: 'the FMA probe is doubtful (above)' } : peak;
    console.log(`\n1. interleaved run by run, ${warmup} warm-up and ${runs} timed runs per case (onnxruntime: intra_op.allow_spinning=0)`);
    for (const l of reportLines(interleaved, tablePeak, true)) console.log(l);
    console.log(`\n2. standalone blocks of ${standaloneRuns} runs per case, each engine alone (onnxruntime: default settings, spinning on)`);
    for (const l of reportLines([...standalone.nincc, ...standalone.ort, ...standalone.torch], tablePeak, false)) console.log(l);
    await interleave(bothSpin);
    console.log(`\n3. interleaved run by run, inference, ${runs} timed runs per case, both engines spinning after each run (onnxruntime: default settings)`);
    for (const l of reportLines(bothSpin, tablePeak, true)) console.log(l);
    const overhead: CallOverhead = await measureCallOverhead(resolve(packageRoot(), parsed.work), threads);
    console.log(`\n4. per-call cost apart from the kernels (a 2→2 linear + log-softmax at batch 1, median of ${overhead.calls} calls):`);
    console.log(`nincc infer() ${overhead.ninccMicros.toFixed(1)} µs (input copied in, run on the ${overhead.ninccThread === 'JS' ? 'JS thread (plan.json inlineMaxBatch)' : "addon's worker thread"}, output copied out); onnxruntime session.run() ${overhead.ortMicros.toFixed(1)} µs`);
    const ninB1 = interleaved.find((c) => c.engine === 'nincc' && c.what === 'infer' && c.batch === 1);
    if (ninB1) console.log(`that is ${((100 * overhead.ninccMicros * 1e-6) / median(ninB1.seconds)).toFixed(1)}% of nincc's ${ninB1.model} batch-1 median`);
    console.log('\nGFLOP/s count 2 FLOP per multiply-add of the conv and linear layers; a training step counts 3× the forward.');
    console.log('nincc/ort: onnxruntime median time ÷ nincc median time (> 1: nincc faster); in brackets, for interleaved runs,');
    console.log('the median of the per-round ratios. nincc/torch: the faster PyTorch layout\'s median ÷ nincc\'s (inference and');
    console.log('the training step), that layout in brackets. % peak: of the measured peak above, \'—\' where the probe cannot be trusted.');
    if (parsed.json) {
      const strip = (cases: Case[]) => cases.map(({ run: _run, ...rest }) => ({ ...rest, median: median(rest.seconds) }));
      writeFileSync(parsed.json, JSON.stringify({ machine, probeAfter: afterRows, peak, interleaved: strip(interleaved), bothSpin: strip(bothSpin), standalone: strip([...standalone.nincc, ...standalone.ort, ...standalone.torch]), callOverheadMicros: overhead }, null, 1));
    }
    return 0;
  } finally {
    for (const m of models) m.dispose();
    for (const s of sessions) await s.release();
    torch.engine?.close();
  }
}

main().then((code) => process.exit(code), (e) => {
  console.error(e);
  process.exit(1);
});
