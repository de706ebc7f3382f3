// Pass: plan.json, the versioned contract the runtime loads (docs/artifact.md).
import type { Precision, ShapedModel } from '../ir.js';
import type { ParamLayout } from '../lower/params.js';
import type { MemoryPlan } from '../lower/memory.js';
import type { BufferDecl, Dtype, Program, Space, TensorEntry } from '../lower/program-ir.js';

export const PLAN_FORMAT = 'nincc-plan';
export const PLAN_VERSION = 2; // runtime/core/plan.h kPlanFormatVersion: raised by every field a runtime from before it would misread
export const NINCC_VERSION = '0.1.0';

export interface BufferRef {
  readonly space: Space;
  readonly offset: number;
  readonly size: number;
  readonly dtype: Dtype;
}

/**
 * How the cuda/emu device launches a step (docs/artifact.md): `grid` blocks, with grid dimension
 * `batchAxis` (0 = x, 1 = y, 2 = z; absent = none) multiplied by the call's batch size N; `block`
 * threads; `shared` bytes of dynamic shared memory. Only steps of programs the cuda kernels cover have one.
 */
export interface PlanLaunch {
  readonly grid: readonly [number, number, number];
  readonly batchAxis?: 0 | 1 | 2;
  readonly block: readonly [number, number, number];
  readonly shared: number;
  readonly seed?: boolean; // the kernel's last parameter is the call's 64-bit seed (dropout)
}

export interface PlanStep {
  readonly kernel: string;
  readonly layer: number;
  readonly source: string;
  readonly args: readonly BufferRef[];
  readonly scalars: readonly string[];
  readonly launch?: PlanLaunch; // cuda/emu launch geometry
}

export interface PlanProgram {
  readonly inputs: Readonly<Record<string, BufferRef>>;
  readonly outputs: Readonly<Record<string, BufferRef>>;
  readonly steps: readonly PlanStep[];
  readonly devices?: readonly string[]; // the devices that implement it; absent: all of the artifact's
  readonly inlineMaxBatch?: number; // infer: the cpu device runs a call of at most this many images on the JS thread (schedule/cpu-region-inline-call.ts)
  readonly oneShot?: true; // runs once after the weights change (program-ir.ts Program): launched step by step
  readonly splitBatch?: true; // every step is per image: the cpu device may run slices of the batch at once (schedule/cpu-infer-split-batch.ts)
  readonly splitLocal?: { readonly from: number; readonly stride: number }; // act buffers from `from` on lie in each slice's own region (lower/memory.ts SplitLocal)
}

export interface PlanTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly offset: number;
  readonly size: number;
  readonly init: TensorEntry['init'];
  readonly torch: TensorEntry['torch'];
  readonly layer: number;
}

export interface Plan {
  readonly format: typeof PLAN_FORMAT;
  readonly version: number;
  readonly nincc: string;
  readonly model: string;
  readonly sourceHash: string;
  readonly input: readonly number[];
  readonly output: readonly number[];
  readonly classes: number;
  readonly maxBatch: number;
  readonly macsPerImage: number; // forward multiply-accumulates of conv and linear layers, for benchmarks
  readonly imageSize?: number;
  readonly transform?: { readonly mean: readonly number[]; readonly std: readonly number[] };
  readonly train?: ShapedModel['train'];
  readonly libraries: Readonly<Record<string, string>>;
  readonly spaces: Readonly<Record<Space, number>>;
  readonly params: readonly PlanTensor[];
  readonly state: readonly PlanTensor[];
  readonly programs: Readonly<Record<string, PlanProgram>>;
  readonly untrainable?: string; // why there are no training programs, when there are none
  /** /proc/cpuinfo flag names kernels.cpu.so was compiled to use; the runtime refuses a host lacking one (runtime/cpu-features.ts). */
  readonly cpuFeatures?: readonly string[];
  /** The cuda/emu GEMM kernels' arithmetic when it is not fp32 (absent: fp32; the cpu kernels are always fp32). */
  readonly precision?: Exclude<Precision, 'fp32'>;
  /**
   * Present when the programs take uint8 images (docs/artifact.md#imageinput): N×H×W×C bytes, which the first
   * conv loads as (v/255 − mean[c])/std[c]; absent: float32 N×C×H×W, normalised by the loader.
   */
  readonly imageInput?: ImageInput;
  /** Fixed buffers of last-block tickets (docs/artifact.md#tickets): the runtime zeroes them before the run after a failed one. */
  readonly tickets?: readonly BufferRef[];
}

export interface ImageInput {
  readonly dtype: 'u8';
  readonly layout: 'nhwc';
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

export interface EmitOptions {
  readonly maxBatch: number;
  readonly sourceHash: string;
  readonly libraries: Record<string, string>;
  readonly cpuFeatures: readonly string[];
  readonly precision?: Precision;
  /** cuda/emu builds: each kernel's launch rule (schedule/cuda-launch.ts) and the programs only those devices run. */
  readonly cuda?: { readonly launch: ReadonlyMap<string, PlanLaunch>; readonly onlyPrograms: readonly string[] };
  readonly untrainable?: string;
  readonly imageInput?: ImageInput;
  /** the infer program's inlineMaxBatch (schedule/cpu-region-inline-call.ts); 0: none */
  readonly inlineMaxBatch?: number;
}

export function emitPlan(
  m: ShapedModel,
  layout: ParamLayout,
  memory: MemoryPlan,
  programs: readonly Program[],
  options: EmitOptions,
): Plan {
  const byId = new Map<string, BufferDecl>(memory.buffers.map((b) => [b.id, b]));
  const ref = (id: string): BufferRef => {
    const b = byId.get(id);
    if (!b || b.offset === undefined) throw new Error(`internal error: buffer ${id} has no place in memory`);
    return { space: b.space, offset: b.offset, size: b.size, dtype: b.dtype };
  };
  const tensor = (t: TensorEntry): PlanTensor => {
    const r = ref(t.buffer);
    return { name: t.name, shape: t.shape, offset: r.offset, size: r.size, init: t.init, torch: t.torch, layer: t.layer };
  };
  const launchOf = (kernel: string): { launch?: PlanLaunch } => {
    if (!options.cuda) return {};
    const launch = options.cuda.launch.get(kernel);
    if (!launch) throw new Error(`internal error: no launch rule for ${kernel}`);
    return { launch };
  };
  const mapRefs = (o: Readonly<Record<string, string>>) => Object.fromEntries(Object.entries(o).map(([k, id]) => [k, ref(id)]));
  return {
    format: PLAN_FORMAT,
    version: PLAN_VERSION,
    nincc: NINCC_VERSION,
    model: m.name,
    sourceHash: options.sourceHash,
    input: m.input,
    output: m.output,
    classes: m.output.reduce((a, b) => a * b, 1),
    maxBatch: options.maxBatch,
    macsPerImage: m.totals.macs,
    ...(m.imageSize !== undefined ? { imageSize: m.imageSize } : {}),
    ...(m.transform ? { transform: m.transform } : {}),
    ...(m.train ? { train: m.train } : {}),
    libraries: options.libraries,
    cpuFeatures: options.cpuFeatures,
    ...(options.precision && options.precision !== 'fp32' ? { precision: options.precision } : {}),
    ...(options.imageInput ? { imageInput: options.imageInput } : {}),
    spaces: { param: layout.paramSize, grad: layout.paramSize, momentum: layout.paramSize, state: layout.stateSize, fixed: memory.fixedSize, act: memory.actSize },
    params: layout.params.map(tensor),
    state: layout.state.map(tensor),
    programs: Object.fromEntries(
      programs.map((p) => [
        p.name,
        {
          inputs: mapRefs(p.inputs),
          outputs: mapRefs(p.outputs),
          steps: p.steps.map((s) => ({ kernel: s.kernel, layer: s.layer, source: s.source, args: s.args.map(ref), scalars: s.scalars, ...launchOf(s.kernel) })),
          ...(options.cuda?.onlyPrograms.includes(p.name) ? { devices: ['cuda', 'emu'] } : {}),
          ...(p.name === 'infer' && options.inlineMaxBatch ? { inlineMaxBatch: options.inlineMaxBatch } : {}),
          ...(p.name === 'infer' && memory.inferSplit?.split ? { splitBatch: true as const } : {}),
          ...(p.name === 'infer' && memory.inferSplit?.split && memory.inferSplitLocal ? { splitLocal: memory.inferSplitLocal } : {}),
          ...(p.oneShot ? { oneShot: true as const } : {}),
        },
      ]),
    ),
    ...(options.untrainable ? { untrainable: options.untrainable } : {}),
    ...(memory.buffers.some((b) => b.tickets) ? { tickets: memory.buffers.filter((b) => b.tickets).map((b) => ref(b.id)) } : {}),
  };
}
