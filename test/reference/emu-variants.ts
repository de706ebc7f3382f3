// Emu bf16 builds of one spec, one per ablation setting (compiler/ablations.ts), side by side in one temporary
// directory: the A/B tests of the bf16 path's optimizations build the optimized kernels and what they replaced.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildArtifact } from '../../compiler/build.js';
import { compileModel, compileSpec, type Compiled } from '../../compiler/pipeline.js';
import type { Ablations } from '../../compiler/ablations.js';
import { withEnv } from './env.js';

export interface EmuVariants<V extends string> {
  /** Each variant's artifact directory. */
  readonly dirs: Record<V, string>;
  /** Removes every build. */
  remove(): void;
}

/**
 * Builds `spec` (named `file` in diagnostics) for emu at bf16 (or `precision`) once per variant, each with its ablations, without
 * nvcc or the cpu library (the variants run on emu only), and for the GPU `gpus` names, if any (its weight-gradient split counts). The grids are sized for a batch of 4
 * (or `maxBatch`), so that a test's batch of 3 (one less) leaves a partial grid.
 */
export function buildEmuVariants<V extends string>(spec: string, file: string, variants: Record<V, Ablations>, gpus: Partial<Record<V, string>> = {}, precision: 'bf16' | 'fp32' = 'bf16', maxBatch = 4): EmuVariants<V> {
  const root = mkdtempSync(join(tmpdir(), `nincc-${file.replace(/\.model$/, '')}-`));
  const r = compileSpec(spec, file);
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  const model = r.model;
  const dirs = {} as Record<V, string>;
  for (const [name, ablations] of Object.entries(variants) as [V, Ablations][]) {
    dirs[name] = join(root, name);
    withEnv({ NINCC_NVCC: '0' }, () => buildArtifact(model, spec, { outDir: dirs[name], target: 'emu', maxBatch, precision, ablations, withoutCpuLibrary: true, ...(gpus[name] ? { gpu: gpus[name] } : {}) }));
  }
  return { dirs, remove: () => rmSync(root, { recursive: true, force: true }) };
}

/** The emu bf16 compile of `spec` with `ablations` (grids for a batch of 4, as buildEmuVariants), without g++ or nvcc: the CI cases. */
export function compileEmuVariant(spec: string, file: string, ablations: Ablations = {}, precision: 'bf16' | 'fp32' = 'bf16', gpu?: string): Compiled {
  const r = compileSpec(spec, file, { device: 'emu' });
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  return compileModel(r.model, { target: 'emu', maxBatch: 4, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision, ablations, ...(gpu ? { gpu } : {}) });
}

/** The kernels whose bodies differ between two compiles of one spec (by name, in `a`'s order): what a switch changed. */
export function changedKernels(a: Compiled, b: Compiled): string[] {
  const bodies = new Map((b.cuda?.kernels ?? []).map((k) => [k.name, JSON.stringify(k.body)]));
  return (a.cuda?.kernels ?? []).filter((k) => JSON.stringify(k.body) !== bodies.get(k.name)).map((k) => k.name);
}
