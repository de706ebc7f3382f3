// The compiler's table of contents: every pass from spec text to rendered sources, in the order it runs.
// Each pass is a pure function of earlier passes' outputs; none edits what another produced.
//
//  front end (analyzeSpec)                    text → ShapedNetwork, with diagnostics (nincc check, inspect)
//   1 parse            grammar/parse.ts
//   2 select-model     front/resolve-header.ts   (selectModel)
//   3 resolve-header   front/resolve-header.ts   input size, image size, transform
//   4 resolve-train    front/resolve-train.ts    the train block
//   5 expand-defs      front/expand-defs.ts      defs → layers and residual/concat blocks (front/evaluate.ts: expressions)
//   6 infer-shapes     front/infer-shapes.ts     shapes, parameter and MAC counts (front/layers.ts: the layer table)
//   7 verify           front/verify-ir.ts
//  compileSpec = analyzeSpec, then the one capability check (front/lowerable.ts, not a pass): the network as the
//  chain of layers lowering takes (ShapedModel: blocks opened into branches and a merge), or E090 at the first
//  block or layer the device does not take yet
//  lowering (lowerModel)                      ShapedModel → kernel programs and their memory
//   8 lower-params     lower/params.ts           parameter and running-statistics layout
//   9 lower-train      lower/train.ts (cpu: a kernel per layer), lower/train-fused.ts (cuda/emu: fused BN+ReLU),
//                      the SGD update in lower/train.ts; `untrainable` says why there is none
//  10 lower-infer      lower/infer.ts            prepare_infer (BN folding) + infer; buffers sized with
//                                                schedule/cpu-conv-algorithm.ts (the cpu conv algorithm choice)
//  11 verify-program   lower/verify-program.ts   every step against its op's contract (lower/ops.ts: buffers, dtypes,
//                                                sizes, consts) and the programs' dataflow
//  12 plan-memory      lower/memory.ts           offsets in the fixed and activation spaces
//  13 verify-memory    lower/verify-memory.ts    no two buffers in use at once share memory (its own liveness)
//  schedule for the target (compileModel)
//  14 schedule-cuda    schedule/cuda-launch.ts   cuda/emu: each kernel's body and launch geometry (backends/cuda/kernels.ts)
//  emit
//  15 emit-plan        emit/plan.ts              plan.json (docs/artifact.md), launch rules included
//  render
//  16 render-cpu       backends/cpu/render.ts    kernels.cpu.cc (template backends/cpu/kernels.cpu.cc.njk)
//  17 render-cuda      backends/cuda/render.ts   kernels.cu (template backends/cuda/kernels.cu.njk)
//
// build.ts then hashes, caches, runs the toolchains (backends/*/toolchain.ts), writes the artifact and
// report.txt (report/build-report.ts). The `dump` hook receives each pass's name and output in this order.
import { hasErrors, type Diagnostic } from '../grammar/diagnostics.js';
import { parseSpec } from '../grammar/parse.js';
import { expandDefs } from './front/expand-defs.js';
import { inferShapes } from './front/infer-shapes.js';
import type { Precision, ShapedModel, ShapedNetwork } from './ir.js';
import { deviceProblem, lowerableChain, trainingProblem, type Device } from './front/lowerable.js';
import { resolveHeader, selectModel } from './front/resolve-header.js';
import { resolveTrain } from './front/resolve-train.js';
import { IRVerificationError, verifyNetwork, verifyShapedModel } from './front/verify-ir.js';
import { emitPlan, type Plan } from './emit/plan.js';
import { lowerInference } from './lower/infer.js';
import { lowerParams, type ParamLayout } from './lower/params.js';
import { lowerSgdUpdate, lowerTrainForwardBackward, whyUntrainable } from './lower/train.js';
import { lowerTrainFused, type FusedTrainOptions } from './lower/train-fused.js';
import { WGRAD_RESIDENT_BLOCKS } from './lower/wgrad-splits-waves.js';
import { wgradGpuChoice, type WgradChoiceMade } from './schedule/wgrad-gpu-choice.js';
import { dgradSplitGrid } from './backends/cuda/conv-mma-grad.js';
import { chooseDgradSplits } from './backends/cuda/conv-mma-dgrad-splits.js';
import { gpuNamed } from '../runtime/profile/gpus.js';
import { u8Stem } from './lower/u8-input.js';
import type { KernelStep, Program } from './lower/program-ir.js';
import { moveWeightCopies, type CopyLayoutOf } from './lower/sgd-weight-copies.js';
import { weightCopyLayout as copyLayout } from './backends/cuda/conv-weight-bf16.js';
import { planMemory, type MemoryPlan } from './lower/memory.js';
import { verifyMemory } from './lower/verify-memory.js';
import { verifyPrograms } from './lower/verify-program.js';
import { CUDA_ONLY_PROGRAMS, scheduleCudaKernels, type ScheduledCudaKernel } from './schedule/cuda-launch.js';
import { generateCpuSource, type CpuSource } from './backends/cpu/render.js';
import { generateCudaSource, type CudaSource } from './backends/cuda/render.js';
import { isOn, isOptedIn, type Ablations } from './ablations.js';
import { kernelAblations, type TunedChoices } from './tune/tune-record.js';
import { inlineCallMaxBatch } from './schedule/cpu-region-inline-call.js';

export interface AnalysisResult {
  readonly network?: ShapedNetwork;
  readonly diagnostics: readonly Diagnostic[];
}

export interface FrontEndResult {
  /** Present when the network is a chain that lowering takes (front/lowerable.ts); else diagnostics say why not. */
  readonly model?: ShapedModel;
  readonly diagnostics: readonly Diagnostic[];
}

export interface FrontEndOptions {
  /** Called with each pass's name and output, for `--dump` and tests. */
  readonly dump?: (pass: string, ir: unknown) => void;
  /** The device the model is built for: compileSpec refuses what it does not lower yet (front/lowerable.ts). Default cpu. */
  readonly device?: Device;
}

/** The front end for everything that builds, trains or runs: analyzeSpec, then the chain lowering takes. */
export function compileSpec(source: string, file: string, options: FrontEndOptions = {}): FrontEndResult {
  const analysed = analyzeSpec(source, file, options);
  if (!analysed.network) return { diagnostics: analysed.diagnostics };
  const chain = lowerableChain(analysed.network, options.device);
  if ('problem' in chain) return { diagnostics: [...analysed.diagnostics, chain.problem] };
  const problems = verifyShapedModel(chain.model);
  if (problems.length > 0) throw new IRVerificationError('lowerable', problems);
  return { model: chain.model, diagnostics: analysed.diagnostics };
}

/** The front end for describing a model (nincc check, inspect): any network the language writes. */
export function analyzeSpec(source: string, file: string, options: FrontEndOptions = {}): AnalysisResult {
  const dump = options.dump ?? (() => {});
  const diagnostics: Diagnostic[] = [];

  const parsed = parseSpec(source, file);
  dump('parse', parsed.ast);
  diagnostics.push(...parsed.diagnostics);
  // A syntax error stops the run here unless the parser repaired it where it stood (`inptu 1x28x28` read as
  // `input`, `modle m {` as `model`) or skipped it whole (a `//` line): then the tree is what the author meant and its semantic errors
  // are real. Any other syntax error leaves a recovered, partial tree, on which they would mostly be echoes.
  if (!parsed.intact) return { diagnostics };

  const selected = selectModel(parsed.ast);
  dump('select-model', selected.model);
  diagnostics.push(...selected.diagnostics);
  if (!selected.model) return { diagnostics };
  const decl = selected.model;

  const header = resolveHeader(decl);
  dump('resolve-header', header);
  const train = resolveTrain(parsed.ast);
  dump('resolve-train', train.train);
  // The train block's errors and the model's come from different passes: each group in the order of its block.
  const trainFirst = (parsed.ast.trains[0]?.span.start.offset ?? Infinity) < decl.span.start.offset;
  const modelDiagnostics: Diagnostic[] = [...header.diagnostics];
  // The parse's repaired errors (in file order) go among them by position.
  const semantic = () => (trainFirst ? [...train.diagnostics, ...modelDiagnostics] : [...modelDiagnostics, ...train.diagnostics]);
  const done = () => ({ diagnostics: interleave(diagnostics, semantic()) });

  const expanded = expandDefs(decl);
  dump('expand-defs', expanded.nodes);
  modelDiagnostics.push(...expanded.diagnostics);
  // A bad train option or layer call does not hide the model's other errors: shapes are inferred past the
  // calls that failed (their place is a gap of unknown shape) unless the header or the expansion ran away.
  const runaway = expanded.diagnostics.some((d) => d.code === 'E015');
  if (hasErrors(header.diagnostics) || runaway || !header.input) return done();

  const shaped = inferShapes(expanded.nodes, header.input, expanded.gaps);
  dump('infer-shapes', shaped.nodes);
  modelDiagnostics.splice(header.diagnostics.length, Infinity, ...interleave(expanded.diagnostics, shaped.diagnostics));
  // A repaired syntax error is still an error: no model.
  if (hasErrors(diagnostics) || hasErrors(modelDiagnostics) || hasErrors(train.diagnostics) || !shaped.output) return done();
  const all = interleave(diagnostics, semantic());

  const network: ShapedNetwork = {
    name: decl.name,
    file,
    input: header.input,
    ...(header.imageSize !== undefined ? { imageSize: header.imageSize } : {}),
    ...(header.transform ? { transform: header.transform } : {}),
    ...(train.train ? { train: train.train } : {}),
    nodes: shaped.nodes,
    output: shaped.output,
    totals: shaped.nodes.reduce((t, l) => ({ params: t.params + l.params, macs: t.macs + l.macs }), { params: 0, macs: 0 }),
  };
  const problems = verifyNetwork(network);
  dump('verify', problems);
  if (problems.length > 0) throw new IRVerificationError('infer-shapes', problems);
  return { network, diagnostics: all };
}

/** Two passes' diagnostics in one list by source position, each pass's own order kept (a def's errors follow its calls). */
function interleave(a: readonly Diagnostic[], b: readonly Diagnostic[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i].span.start.offset <= b[j].span.start.offset)) out.push(a[i++]);
    else out.push(b[j++]);
  }
  return out;
}

export interface LoweringOptions {
  readonly maxBatch: number;
  /** cpu: one kernel per layer (the cpu library's). cuda: the fused BN+ReLU training program (cuda/emu). */
  readonly trainKernels?: 'cpu' | 'cuda';
  /** u8: the programs take uint8 NHWC images, normalised by the first conv (lower/u8-input.ts); absent: float NCHW. */
  readonly input?: 'u8';
  /** With trainKernels cuda: a grad_rebuild pass before the gradients of a conv wider than 1×1 (lower/train-fused.ts FusedTrainOptions). */
  readonly rebuildPass?: boolean;
  /** With trainKernels cuda: the k×k convs' forwards, data gradients and inference convs stage a bf16 copy of their weights (lower/train-fused.ts FusedTrainOptions, lower/infer.ts). */
  readonly bf16Weights?: boolean;
  /** With trainKernels cuda: a residual add is computed by the conv that reads it first, as it loads (lower/train-fused.ts FusedTrainOptions). */
  readonly addInNextConv?: boolean;
  /** With trainKernels cuda: a residual add's backward is done by the data gradient of the conv that reads it first (lower/train-fused.ts FusedTrainOptions). */
  readonly addBwdInDgrad?: boolean;
  /** With trainKernels cuda: addInNextConv for the adds a 1×1 conv reads first only (lower/train-fused.ts FusedTrainOptions). */
  readonly addInNextPointwiseConv?: boolean;
  /** With rebuildPass: the pass stores dY' in bf16 for the conv gradients that read it (lower/train-fused.ts FusedTrainOptions). */
  readonly bf16Rebuilt?: boolean;
  /** With bf16Rebuilt: the conv's weight gradient rebuilds dY' and stores it for its data gradient, no pass (lower/train-fused.ts FusedTrainOptions). */
  readonly rebuildInWgrad?: boolean;
  /** With trainKernels cpu: false, the BN forwards' statistics in two passes over x (ablations.ts cpuBnOnePassStats). */
  readonly bnOnePassStats?: boolean;
  /** With trainKernels cpu: the BN forwards after implicit-GEMM convs take their statistics from the convs' epilogues (ablations.ts opt-in cpuBnStatsInConv). */
  readonly bnStatsInConv?: boolean;
  /** With trainKernels cpu: false, the 1×1 weight gradients prefetch in bursts (ablations.ts cpuWgradSpreadPrefetch). */
  readonly wgradSpreadPrefetch?: boolean;
  /** With trainKernels cpu: false, the max pools' backwards before a BN+ReLU's backward run as passes of their own (ablations.ts cpuBnPoolBackward). */
  readonly bnPoolBackward?: boolean;
  /** With trainKernels cuda: a max pool read only by convs stores its output in bf16 (lower/train-fused.ts FusedTrainOptions). */
  readonly bf16Pooled?: boolean;
  /** With trainKernels cuda: a conv read only by a conv or a pool stores its output in bf16 (lower/train-fused.ts FusedTrainOptions). */
  readonly bf16ConvOut?: boolean;
  /** With trainKernels cuda: the bf16 weight gradients sum their splits in their last split block, no wgrad_reduce (lower/train-fused.ts FusedTrainOptions). */
  readonly wgradLastSplit?: boolean;
  /** With trainKernels cuda: data gradients and max pool backwards store dX in bf16 for the conv before a BN or a pool's backward (lower/train-fused.ts FusedTrainOptions). */
  readonly bf16Gradients?: boolean;
  /** With wgradLastSplit: a folded weight gradient's split count for the GPU built for (lower/train-fused.ts FusedTrainOptions). */
  readonly wgradSplitsFor?: FusedTrainOptions['wgradSplitsFor'];
  /** A tap-major data gradient's splits for the GPU (lower/train-fused.ts FusedTrainOptions). */
  readonly dgradSplitsFor?: FusedTrainOptions['dgradSplitsFor'];
  /** With wgradSplitsFor: a few-channels strided stem's weight gradient takes as many splits as fill the GPU, summed by wgrad_reduce (lower/train-fused.ts FusedTrainOptions). */
  readonly stemWaveSplits?: boolean;
  /** With bf16Weights: the layout of each conv's bf16 copy, where the SGD update writes the copies (lower/sgd-weight-copies.ts; ablations.ts sgdWeightCopies). */
  readonly weightCopyLayout?: CopyLayoutOf;
  /** The L3 of the machine the cpu library runs on, which the packed convs' algorithm choice reads (schedule/cpu-conv-algorithm.ts); absent: its default. */
  readonly cpuL3Bytes?: number;
  /** The winogradHalfTiles ablation: the packed convs' Winograd products multiply every lane of a column tile (runtime conv_winograd.h). */
  readonly winogradFullTiles?: boolean;
  /** The narrowTails ablation: the packed convs' implicit GEMM and pointwise direct conv multiply every lane of a short last pixel tile (runtime conv_gemm.h tail_split). */
  readonly wideTails?: boolean;
  /** The cpu's 1x1 pair regions (schedule/cpu-pointwise-pair-region.ts; ablations.ts cpuPairBands): the cpu target only. */
  readonly cpuPairBands?: boolean;
  /** The cpu's block regions (schedule/cpu-block-bands.ts; ablations.ts cpuBlockBands): the cpu target only. */
  readonly cpuBlockBands?: boolean;
  /** A batch-split inference program's slices keep their own buffers, shared by liveness (lower/memory.ts; ablations.ts cpuSplitLocalAct): the cpu target only. */
  readonly cpuSplitLocalAct?: boolean;
  /** The inPlacePointwise ablation: the packed 1x1 convs' implicit GEMM gathers its tiles at batch 1 too (runtime conv_gemm.h reads_in_place). */
  readonly gatheredPointwise?: boolean;
  /** The spreadWeightPrefetch ablation: the packed convs' implicit GEMM prefetches the next weight panel in a sweep's last tile only (runtime conv_gemm.h forward_tasks). */
  readonly lastTileWeightPrefetch?: boolean;
  /** The cpuPlainMaxPool ablation: the inference max pools take Torch's NaN rule at every step (runtime pool.h plane_max_in_registers). */
  readonly ruledMaxPool?: boolean;
  /** The poolRowPrefetch ablation: the inference max pools' two-pass planes read without row prefetches (runtime pool.h plane_max_two_pass). */
  readonly unfetchedPoolRows?: boolean;
}

export interface Lowered {
  readonly layout: ParamLayout;
  readonly programs: readonly Program[];
  readonly memory: MemoryPlan;
  readonly inferenceGroups: ReturnType<typeof lowerInference>['groups'];
  readonly untrainable?: string; // why there are no training programs, when there are none
}

type Dump = NonNullable<FrontEndOptions['dump']>;

/** Lowering: params → training programs → inference programs → their verifier → memory (passes 8–13). */
export function lowerModel(model: ShapedModel, options: LoweringOptions, dumpIR: Dump = () => {}): Lowered {
  const layout = lowerParams(model);
  dumpIR('lower-params', layout);
  // The fused cuda/emu training program takes less than inference does (front/lowerable.ts says what).
  const untrainable = whyUntrainable(model, layout) ?? (options.trainKernels === 'cuda' ? trainingProblem(model, 'emu') : undefined);
  const stem = options.input === 'u8' ? u8Stem(model) : undefined;
  const train = untrainable ? undefined : options.trainKernels === 'cuda' ? lowerTrainFused(model, options.maxBatch, stem, { rebuildPass: options.rebuildPass === true, bf16Weights: options.bf16Weights === true, bf16Rebuilt: options.bf16Rebuilt === true, rebuildInWgrad: options.rebuildInWgrad === true, bf16Pooled: options.bf16Pooled === true, bf16ConvOut: options.bf16ConvOut === true, bf16Gradients: options.bf16Gradients === true, wgradLastSplit: options.wgradLastSplit === true, ...(options.wgradSplitsFor ? { wgradSplitsFor: options.wgradSplitsFor } : {}), ...(options.dgradSplitsFor ? { dgradSplitsFor: options.dgradSplitsFor } : {}), stemWaveSplits: options.stemWaveSplits === true, addInNextConv: options.addInNextConv === true, addInNextPointwiseConv: options.addInNextPointwiseConv === true, addBwdInDgrad: options.addBwdInDgrad === true }) : lowerTrainForwardBackward(model, stem, { bnOnePassStats: options.bnOnePassStats !== false, wgradSpreadPrefetch: options.wgradSpreadPrefetch !== false, bnPoolBackward: options.bnPoolBackward !== false, bnStatsInConv: options.bnStatsInConv === true });
  const moved = train && options.bf16Weights && options.weightCopyLayout ? moveWeightCopies(train.program, options.weightCopyLayout) : undefined;
  const trainProgram = moved?.train ?? train?.program;
  const sgd = untrainable ? undefined : lowerSgdUpdate(model, layout, moved?.updates);
  dumpIR('lower-train', trainProgram);
  const infer = lowerInference(model, stem, options.maxBatch, { bf16Weights: options.bf16Weights === true, ...(options.cpuL3Bytes !== undefined && { cpuL3Bytes: options.cpuL3Bytes }), ...(options.winogradFullTiles && { winogradFullTiles: true }), ...(options.wideTails && { wideTails: true }), ...(options.cpuPairBands && { cpuPairBands: true }), ...(options.cpuBlockBands && { cpuBlockBands: true }), ...(options.gatheredPointwise && { gatheredPointwise: true }), ...(options.lastTileWeightPrefetch && { lastTileWeightPrefetch: true }), ...(options.ruledMaxPool && { ruledMaxPool: true }), ...(options.unfetchedPoolRows && { unfetchedPoolRows: true }) });
  dumpIR('lower-infer', infer);
  const programs = [infer.prepare, infer.infer, ...(trainProgram ? [trainProgram] : []), ...(moved?.copies ? [moved.copies] : []), ...(sgd ? [sgd] : [])];
  const buffers = [...layout.buffers, ...infer.builders.flatMap((b) => b.buffers), ...(train ? train.builder.buffers : [])];
  const stepProblems = verifyPrograms(programs, buffers);
  dumpIR('verify-program', stepProblems);
  if (stepProblems.length > 0) throw new IRVerificationError('lower-train and lower-infer', stepProblems);
  const memory = planMemory(buffers, programs, { splitLocal: options.cpuSplitLocalAct === true });
  dumpIR('plan-memory', memory);
  const problems = verifyMemory(memory, programs);
  dumpIR('verify-memory', problems);
  if (problems.length > 0) throw new IRVerificationError('plan-memory', problems);
  return { layout, programs, memory, inferenceGroups: infer.groups, ...(untrainable ? { untrainable } : {}) };
}

export interface CompileOptions {
  readonly target: 'cpu' | 'emu' | 'cuda';
  readonly maxBatch: number;
  readonly sourceHash: string;
  readonly libraries: Record<string, string>;
  /** the CPU features kernels.cpu.so is compiled for (backends/cpu/toolchain.ts cpuFeatures), listed in the plan */
  readonly cpuFeatures: readonly string[];
  /** the cuda/emu GEMM kernels' arithmetic (the cpu kernels are fp32); default fp32 */
  readonly precision?: Precision;
  /** u8: the artifact takes uint8 NHWC images, normalised by its first conv (lower/u8-input.ts) */
  readonly input?: 'u8';
  /** the bf16 optimizations this build leaves out, for A/B checks (ablations.ts) */
  readonly ablations?: Ablations;
  /** per-layer choices over `ablations`, from tune.json (compiler/tune/tune-record.ts) */
  readonly tuned?: TunedChoices;
  /** the L3 of the machine kernels.cpu.so runs on, where known (build.ts: a native build's own); the conv algorithm choice reads it */
  readonly cpuL3Bytes?: number;
  /** the GPU a cuda/emu build is for (runtime/profile/gpus.ts): its folded weight gradients' split counts are chosen for its SMs (lower/wgrad-splits-waves.ts); absent: the default counts */
  readonly gpu?: string;
  /** per layer (Torch index), a folded weight gradient's resident blocks per SM on `gpu` by a first compile's ptxas (schedule/wgrad-residency.ts); absent: WGRAD_RESIDENT_BLOCKS */
  readonly wgradResidentBlocks?: ReadonlyMap<number, number>;
}

export interface Compiled {
  readonly lowered: Lowered;
  readonly plan: Plan;
  /** The programs the cpu library implements: a cuda/emu build's fused training programs are not among them. */
  readonly cpuPrograms: readonly Program[];
  readonly cpu: CpuSource;
  readonly cuda?: { readonly kernels: readonly ScheduledCudaKernel[]; readonly source: CudaSource };
  /** per layer (Torch index), the folded weight gradients' choices for `gpu` (schedule/wgrad-gpu-choice.ts); empty without one */
  readonly wgradChoices: ReadonlyMap<number, WgradChoiceMade>;
}

/** The back end: lowering → schedule → emit the plan → render the sources (passes 8–17). */
export function compileModel(model: ShapedModel, options: CompileOptions, dumpIR: Dump = () => {}): Compiled {
  const cudaTarget = options.target !== 'cpu';
  // compileSpec refused it already with a diagnostic when told the device; this catches callers that did not tell it.
  const unsupported = deviceProblem(model, options.target);
  if (unsupported) throw new Error(unsupported);
  const precision = cudaTarget ? (options.precision ?? 'fp32') : 'fp32';
  // The pass serves the bf16 tensor-core gradients, which stage each element once per tap; fp32 stays as it was.
  const rebuildPass = precision === 'bf16' && isOn(options.ablations, 'rebuildPass');
  const bf16Weights = precision === 'bf16' && isOn(options.ablations, 'bf16Weights');
  const bf16Rebuilt = rebuildPass && isOn(options.ablations, 'bf16Rebuilt');
  const rebuildInWgrad = bf16Rebuilt && isOn(options.ablations, 'rebuildInWgrad');
  const bf16Pooled = precision === 'bf16' && isOn(options.ablations, 'bf16Pooled');
  const bf16ConvOut = precision === 'bf16' && isOn(options.ablations, 'bf16ConvOut');
  const bf16Gradients = precision === 'bf16' && isOn(options.ablations, 'bf16Gradients');
  const wgradLastSplit = precision === 'bf16' && isOn(options.ablations, 'wgradLastSplit');
  // The copies' layouts as the cuda backend picks them for each layer and pass (tuned choices included).
  const weightCopyLayout: CopyLayoutOf | undefined = bf16Weights && isOn(options.ablations, 'sgdWeightCopies')
    ? (layer, c) => copyLayout(c, options.maxBatch, kernelAblations(options.ablations, options.tuned, { op: 'conv_weight_bf16', layer, consts: c } as KernelStep))
    : undefined;
  const sms = options.gpu !== undefined ? gpuNamed(options.gpu).sms : undefined;
  const stemWaveSplits = precision === 'bf16' && isOn(options.ablations, 'stemWaveSplits');
  // Any same-size reader adds as it loads in the fp32 SIMT forward (the opt-in); 1×1 readers in either precision: the
  // tensor-core forward adds in its per-slice gather of A only, not from a halo (docs/design.md §4).
  const addInNextConv = precision === 'fp32' && isOptedIn(options.ablations, 'addInNextConv');
  const addInNextPointwiseConv = isOn(options.ablations, 'addInNextPointwiseConv');
  // The data gradient of the conv reading an add first does its backward in its epilogue: the fp32 SIMT kernel and the
  // bf16 tensor-core one (backends/cuda/conv-mma-add-bwd.ts).
  const addBwdInDgrad = isOn(options.ablations, 'addBwdInDgrad');
  // Each folded weight gradient's choice for the GPU, and the consts it was made from (build.ts asks whether ptxas's R changes any).
  const wgradChoices = new Map<number, WgradChoiceMade>();
  const wgradSplitsFor: FusedTrainOptions['wgradSplitsFor'] = sms !== undefined && (wgradLastSplit || stemWaveSplits)
    ? (layer, c) => {
        const measured = options.wgradResidentBlocks?.get(layer.index);
        const choice = wgradGpuChoice({ ...options, sms }, layer.index, c, measured ?? WGRAD_RESIDENT_BLOCKS);
        wgradChoices.set(layer.index, { consts: c, choice });
        // Chosen at more than one block a SM by ptxas: the kernel's launch bounds hold every arch to the registers that fit them.
        return measured !== undefined && measured > 1 && isOn(options.ablations, 'wgradResidencyBounds') ? { ...choice, residentBlocks: measured } : choice;
      }
    : undefined;
  // A tap-major data gradient's splits for the GPU (backends/cuda/conv-mma-dgrad-splits.ts), more than one where its waves say so.
  const dgradSplitsFor: FusedTrainOptions['dgradSplitsFor'] = sms !== undefined && precision === 'bf16' && isOn(options.ablations, 'dgradTapSplits')
    ? (c) => {
        const grid = dgradSplitGrid(c, options.maxBatch, options.ablations);
        const splits = grid ? chooseDgradSplits(grid, sms) : 1;
        return grid && splits > 1 ? { splits, tiles: grid.tiles, area: grid.area } : undefined;
      }
    : undefined;
  const lowered = lowerModel(model, { maxBatch: options.maxBatch, ...(wgradSplitsFor ? { wgradSplitsFor } : {}), ...(dgradSplitsFor ? { dgradSplitsFor } : {}), stemWaveSplits, trainKernels: cudaTarget ? 'cuda' : 'cpu', addInNextConv, addInNextPointwiseConv, addBwdInDgrad, rebuildPass, bf16Weights, bf16Rebuilt, rebuildInWgrad, bf16Pooled, bf16ConvOut, bf16Gradients, wgradLastSplit, ...(weightCopyLayout ? { weightCopyLayout } : {}), bnOnePassStats: isOn(options.ablations, 'cpuBnOnePassStats'), wgradSpreadPrefetch: isOn(options.ablations, 'cpuWgradSpreadPrefetch'), bnPoolBackward: isOn(options.ablations, 'cpuBnPoolBackward'), bnStatsInConv: isOptedIn(options.ablations, 'cpuBnStatsInConv'), ...(options.input ? { input: options.input } : {}), ...(options.cpuL3Bytes !== undefined && { cpuL3Bytes: options.cpuL3Bytes }), ...(!isOn(options.ablations, 'winogradHalfTiles') && { winogradFullTiles: true }), ...(!isOn(options.ablations, 'narrowTails') && { wideTails: true }), ...(!cudaTarget && isOn(options.ablations, 'cpuPairBands') && { cpuPairBands: true }), ...(!cudaTarget && isOn(options.ablations, 'cpuBlockBands') && { cpuBlockBands: true }), ...(!cudaTarget && isOn(options.ablations, 'cpuSplitLocalAct') && { cpuSplitLocalAct: true }), ...(!isOn(options.ablations, 'inPlacePointwise') && { gatheredPointwise: true }), ...(!isOn(options.ablations, 'spreadWeightPrefetch') && { lastTileWeightPrefetch: true }), ...(!isOn(options.ablations, 'cpuPlainMaxPool') && { ruledMaxPool: true }), ...(!isOn(options.ablations, 'poolRowPrefetch') && { unfetchedPoolRows: true }) }, dumpIR);

  const cudaKernels = cudaTarget ? scheduleCudaKernels(lowered.programs, { precision, maxBatch: options.maxBatch, ...(options.ablations ? { ablations: options.ablations } : {}), ...(options.tuned ? { tuned: options.tuned } : {}) }) : undefined;
  dumpIR('schedule-cuda', cudaKernels);

  const plan = emitPlan(model, lowered.layout, lowered.memory, lowered.programs, {
    maxBatch: options.maxBatch,
    sourceHash: options.sourceHash,
    libraries: options.libraries,
    cpuFeatures: options.cpuFeatures,
    precision,
    ...(options.input === 'u8' ? { imageInput: { dtype: 'u8', layout: 'nhwc', ...u8Stem(model) } } : {}),
    ...(cudaKernels ? { cuda: { launch: new Map(cudaKernels.map((k) => [k.name, k.launch])), onlyPrograms: CUDA_ONLY_PROGRAMS } } : {}),
    ...(lowered.untrainable ? { untrainable: lowered.untrainable } : {}),
    inlineMaxBatch: inlineCallMaxBatch(model.totals.macs, options.maxBatch, isOn(options.ablations, 'inlineCall')),
  });
  dumpIR('emit-plan', plan);

  const info = { model: model.name, file: model.file, sourceHash: options.sourceHash };
  const cpuPrograms = cudaTarget ? lowered.programs.filter((p) => !CUDA_ONLY_PROGRAMS.includes(p.name)) : lowered.programs;
  const cpu = generateCpuSource(cpuPrograms, plan, info, isOn(options.ablations, 'cpuNamedPaths'));
  dumpIR('render-cpu', cpu.text);
  const cuda = cudaKernels ? { kernels: cudaKernels, source: generateCudaSource(cudaKernels, info) } : undefined;
  dumpIR('render-cuda', cuda?.source.text);
  return { lowered, plan, cpuPrograms, cpu, ...(cuda ? { cuda } : {}), wgradChoices };
}
