// One shipped model's spill check (issue #15, acceptance 3): every kernel of its generated CUDA compiled by
// nvcc alone (no cpu or emu library) for sm_80 and sm_90, with the kernels that spill. Shared by
// scripts/check-spills.ts (all models) and test/cuda-build.test.ts.
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { nvccCompile, type PtxasKernel } from '../compiler/backends/cuda/toolchain.js';
import type { Precision } from '../compiler/ir.js';
import { compileAtResidency } from '../compiler/compile-at-residency.js';
import { compileSpec } from '../compiler/pipeline.js';

/** The architectures whose SASS the fatbin carries, each checked for spills. */
export const SPILL_ARCHES = ['sm_80', 'sm_90'] as const;

export interface SpillCheck {
  readonly file: string;
  readonly precision: Precision;
  /** the GPU the build chose its tiles and splits for (`nincc build --gpu`), or undefined for a default build */
  readonly gpu?: string;
  readonly kernels: readonly string[]; // exported by the generated source
  readonly compiled: Readonly<Record<(typeof SPILL_ARCHES)[number], readonly PtxasKernel[]>>;
  readonly spilled: readonly PtxasKernel[]; // any arch, spill stores or loads not zero
  readonly cached: boolean; // the fatbin came from the kernel cache
  readonly cuPath: string; // the CUDA source checked (a --gpu build's last compile)
  readonly relowered: boolean; // a --gpu build compiled again at ptxas's resident blocks (compiler/compile-at-residency.ts)
}

/**
 * Compiles `file`'s CUDA (inference and, where it trains on cuda, training kernels; batch from its train
 * block, else 128) in `precision`, for `gpu` where named (a bf16 `nincc build --gpu` build: its weight gradients' splits
 * and tiles), and reads ptxas's report. Writes the .cu and .fatbin under `workDir`.
 * Throws on a spec error or an nvcc failure; nvcc must be installed.
 */
export function spillCheck(file: string, precision: Precision, workDir: string, gpu?: string): SpillCheck {
  const source = readFileSync(file, 'utf8');
  const r = compileSpec(source, basename(file), { device: 'cuda' });
  if (!r.model) throw new Error(`${file}: ${r.diagnostics.map((d) => d.message).join('; ')}`);
  const name = `${r.model.name}-${precision}${gpu !== undefined ? `-${gpu}` : ''}`;
  const cuPath = join(workDir, `${name}.cu`);
  const options = { target: 'cuda' as const, maxBatch: r.model.train?.batch ?? 128, sourceHash: 'spill-check', libraries: {}, cpuFeatures: [], precision, ...(gpu !== undefined ? { gpu } : {}) };
  // A --gpu build's kernels: its choices at ptxas's resident blocks, as build.ts makes them.
  const built = compileAtResidency(r.model, options, (source) => {
    writeFileSync(cuPath, source.text);
    return nvccCompile(source.text, cuPath, join(workDir, `${name}.fatbin`), true);
  });
  const cu = built.compiled.cuda!.source.text;
  const nvcc = built.nvcc!;
  const kernels = [...cu.matchAll(/NINCC_EXPORT\((\w+)\);/g)].map((m) => m[1]);
  const compiled = { sm_80: nvcc.kernels.filter((k) => k.arch === 'sm_80'), sm_90: nvcc.kernels.filter((k) => k.arch === 'sm_90') };
  const spilled = [...compiled.sm_80, ...compiled.sm_90].filter((k) => k.spillStores !== 0 || k.spillLoads !== 0);
  return { file, precision, ...(gpu !== undefined ? { gpu } : {}), kernels, compiled, spilled, cached: nvcc.cached === true, cuPath, relowered: built.relowered };
}
