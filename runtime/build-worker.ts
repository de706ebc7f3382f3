// The worker thread behind build() (runtime/build.ts): the front end and buildArtifact, whose g++
// and nvcc runs are synchronous, run here so that the caller's event loop keeps turning.
import { parentPort, workerData } from 'node:worker_threads';
import { buildArtifact, type BuildResult, type Target } from '../compiler/build.js';
import { compileSpec } from '../compiler/pipeline.js';
import { u8InputDiagnostic, u8InputProblem } from '../compiler/lower/u8-input.js';
import { hasErrors, renderDiagnostics, type Diagnostic } from '../grammar/diagnostics.js';
import type { CpuLevel } from '../compiler/backends/cpu/toolchain.js';
import type { Precision } from '../compiler/ir.js';
import type { TuneSource } from '../compiler/tune/tune-record.js';

export interface BuildJob {
  readonly source: string;
  readonly file: string;
  readonly outDir?: string;
  /** appended to the default build/<model name> when outDir is absent (the CLI keeps emu/cuda builds apart); a uint8 build adds -u8 after it */
  readonly outDirSuffix?: string;
  readonly target: Target;
  readonly maxBatch?: number;
  readonly cpu?: CpuLevel;
  readonly precision?: Precision;
  /** u8: the artifact takes uint8 NHWC images, normalised by its first conv (docs/artifact.md#imageinput) */
  readonly input?: 'u8';
  /** With input absent: u8 when the model can take uint8 images, else float32 with the reason in the result (the CLI's default for image data) */
  readonly preferU8?: boolean;
  /** the per-layer choices to apply: a tune.json or an artifact directory with one, and its GPU entry (compiler/tune/tune-record.ts) */
  readonly tuneFrom?: TuneSource;
  /** the GPU (a100, h100, h200) an emu/cuda build's folded weight gradients choose their split counts for (compiler/lower/wgrad-splits-waves.ts) */
  readonly gpu?: string;
  /** emu/cuda only: leave kernels.cpu.so out, for a caller that runs the artifact on its own device only (compiler/build.ts BuildOptions) */
  readonly withoutCpuLibrary?: boolean;
}

export type BuildMessage =
  | { readonly kind: 'log'; readonly line: string }
  | { readonly kind: 'done'; readonly result: BuildResult; readonly warnings: readonly Diagnostic[]; readonly rendered: string; readonly floatBecause?: string }
  | { readonly kind: 'spec-errors'; readonly diagnostics: readonly Diagnostic[]; readonly rendered: string }
  | { readonly kind: 'failed'; readonly message: string; readonly stack?: string };

function runJob(job: BuildJob, post: (m: BuildMessage) => void): void {
  try {
    const compiled = compileSpec(job.source, job.file, { device: job.target });
    const rendered = compiled.diagnostics.length > 0 ? renderDiagnostics(compiled.diagnostics, job.source) : '';
    if (hasErrors(compiled.diagnostics) || !compiled.model) {
      post({ kind: 'spec-errors', diagnostics: compiled.diagnostics, rendered });
      return;
    }
    // An explicit u8 the model cannot take is the spec's error, at the layer in the way; a preference falls back to float.
    const refused = job.input === 'u8' ? u8InputDiagnostic(compiled.model) : undefined;
    if (refused) {
      post({ kind: 'spec-errors', diagnostics: [refused], rendered: renderDiagnostics([refused], job.source) });
      return;
    }
    const floatBecause = job.input === undefined && job.preferU8 ? u8InputProblem(compiled.model) : undefined;
    const input = job.input ?? (job.preferU8 && floatBecause === undefined ? 'u8' : undefined);
    const outDir = job.outDir ?? `build/${compiled.model.name}${job.outDirSuffix ?? ''}${input ? `-${input}` : ''}`;
    const result = buildArtifact(compiled.model, job.source, {
      outDir,
      target: job.target,
      ...(job.maxBatch !== undefined ? { maxBatch: job.maxBatch } : {}),
      ...(job.cpu !== undefined ? { cpu: job.cpu } : {}),
      ...(job.precision !== undefined ? { precision: job.precision } : {}),
      ...(input !== undefined ? { input } : {}),
      ...(job.tuneFrom !== undefined ? { tuneFrom: job.tuneFrom } : {}),
      ...(job.gpu !== undefined ? { gpu: job.gpu } : {}),
      ...(job.withoutCpuLibrary ? { withoutCpuLibrary: true } : {}),
      log: (line) => post({ kind: 'log', line }),
    });
    post({ kind: 'done', result, warnings: compiled.diagnostics, rendered, ...(floatBecause !== undefined ? { floatBecause } : {}) });
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    post({ kind: 'failed', message: err.message, ...(err.stack ? { stack: err.stack } : {}) });
  }
}

if (parentPort) {
  const port = parentPort;
  runJob(workerData as BuildJob, (m) => port.postMessage(m));
}
