// A cuda/emu compile for one GPU with nvcc's word on registers: the model compiled once with its folded bf16 weight
// gradients' splits (and 1×1 tiles) chosen at WGRAD_RESIDENT_BLOCKS a SM, nvcc's ptxas read back, and, where a kernel's
// registers let it run another count a SM and that changes a choice, compiled again at it (a pure function of the first
// compile: the build stays repeatable). Shared by build.ts and the spill check (scripts/spill-check.ts), so the check
// compiles the kernels a --gpu build ships.
import { isOn } from './ablations.js';
import type { NvccCheck } from './backends/cuda/toolchain.js';
import type { CudaSource } from './backends/cuda/render.js';
import type { ShapedModel } from './ir.js';
import { WGRAD_RESIDENT_BLOCKS } from './lower/wgrad-splits-waves.js';
import { compileModel, type CompileOptions, type Compiled } from './pipeline.js';
import { wgradChoicesChange } from './schedule/wgrad-gpu-choice.js';
import { wgradResidency } from './schedule/wgrad-residency.js';
import { gpuNamed } from '../runtime/profile/gpus.js';

export interface CompiledAtResidency {
  readonly compiled: Compiled;
  /** nvcc's check of compiled's CUDA (undefined: no CUDA) */
  readonly nvcc?: NvccCheck;
  /** per layer, the resident blocks ptxas allows where any differs from WGRAD_RESIDENT_BLOCKS (report.txt's R) */
  readonly wgradResidentBlocks?: ReadonlyMap<number, number>;
  /** the model was compiled a second time at them */
  readonly relowered: boolean;
}

/**
 * `options.gpu` set (a bf16 cuda/emu build for a GPU): the two compiles above; otherwise one. `nvccOf` compiles a CUDA
 * source (build.ts: into the artifact; its cache makes a second call on the same text a hit); `log` hears what happened.
 */
export function compileAtResidency(model: ShapedModel, options: CompileOptions, nvccOf: (cu: CudaSource) => NvccCheck, log: (line: string) => void = () => {}): CompiledAtResidency {
  const first = compileModel(model, options);
  const nvcc = first.cuda ? nvccOf(first.cuda.source) : undefined;
  const gpu = options.gpu !== undefined ? gpuNamed(options.gpu) : undefined;
  const residency = gpu && isOn(options.ablations, 'wgradSplitsAtResidency') && first.cuda && nvcc?.available ? wgradResidency(first.lowered.programs, first.cuda.kernels, nvcc.kernels, gpu) : undefined;
  if (!gpu || !residency || ![...residency.values()].some((r) => r.residentBlocks !== WGRAD_RESIDENT_BLOCKS)) return { compiled: first, ...(nvcc ? { nvcc } : {}), relowered: false };
  const wgradResidentBlocks = new Map([...residency].map(([layer, r]) => [layer, r.residentBlocks]));
  // Where choosing again at ptxas's R changes no split count or tile (each layer at its split cap at any R, say), a
  // second lowering would rebuild the same kernels: it is skipped (schedule/wgrad-gpu-choice.ts).
  const relower = !isOn(options.ablations, 'wgradSkipSameChoice') || wgradChoicesChange(first.wgradChoices, { ...options, sms: gpu.sms }, wgradResidentBlocks);
  log(`weight-gradient splits: chosen again at ptxas's resident blocks (${[...residency.values()].map((r) => `${r.kernel} R ${r.residentBlocks}`).join(', ')})${relower ? '' : ': no choice changes, the first lowering kept'}`);
  if (!relower) return { compiled: first, ...(nvcc ? { nvcc } : {}), wgradResidentBlocks, relowered: false };
  const compiled = compileModel(model, { ...options, wgradResidentBlocks });
  return { compiled, nvcc: nvccOf(compiled.cuda!.source), wgradResidentBlocks, relowered: true };
}
