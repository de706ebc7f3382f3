// `nincc build`: spec → artifact directory (plan.json, generated kernels, compiled libraries, report.txt).
// This file keeps what is not compiling: the build hash, the cache check, the toolchains and the file
// writes; the passes themselves are listed in pipeline.ts.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileEmuLibrary, emuCompilerCommand, findNvcc, nvccCompile, requireNvcc, type NvccCheck } from './backends/cuda/toolchain.js';
import { compileCpuLibrary, cpuFeatures, type CpuLevel } from './backends/cpu/toolchain.js';
import { headersDigest } from './backends/compile-cached.js';
import { NINCC_VERSION, type Plan } from './emit/plan.js';
import { integrityProblem, sealPlan } from './emit/integrity.js';
import type { Precision, ShapedModel } from './ir.js';
import type { CompileOptions } from './pipeline.js';
import { compileAtResidency } from './compile-at-residency.js';
import type { CudaSource } from './backends/cuda/render.js';
import { buildReport } from './report/build-report.js';
import { ablationsDigest, isOn, type Ablations } from './ablations.js';
import { choicesFor, convLayers, modelHash, parseTuneFile, TUNE_FILE, TuneRecordError, tunedDigest, type TunedChoices, type TuneSource } from './tune/tune-record.js';
import { tuneCacheFile } from './tune/tune-cache.js';
import { buildL3Bytes } from './schedule/cpu-winograd-choice-l3.js';

/**
 * cpu: kernels.cpu.so. emu: that plus kernels.cu compiled for the SIMT emulator (kernels.emu.so), and
 * by nvcc into kernels.fatbin where nvcc exists (a compile check). cuda: the same, nvcc required, and
 * the fatbin listed for the cuda device.
 */
export type Target = 'cpu' | 'emu' | 'cuda';
export const TARGETS: readonly Target[] = ['cpu', 'emu', 'cuda'];

export interface BuildOptions {
  readonly outDir: string;
  readonly target: Target;
  readonly maxBatch?: number;
  /** the instruction set kernels.cpu.so may use (default native: this machine's vector extensions) */
  readonly cpu?: CpuLevel;
  /** the GEMM kernels' arithmetic; overrides the train block's `precision` (default fp32) */
  readonly precision?: Precision;
  /** u8: the artifact takes uint8 NHWC images, normalised by its first conv (docs/artifact.md#imageinput) */
  readonly input?: 'u8';
  /** the bf16 optimizations this build leaves out, for A/B checks (compiler/ablations.ts) */
  readonly ablations?: Ablations;
  /** the GPU (runtime/profile/gpus.ts: a100, h100, h200) a cuda/emu build's folded weight gradients choose their split counts for (compiler/lower/wgrad-splits-waves.ts); absent: the default counts */
  readonly gpu?: string;
  /** per-layer choices from a tune.json (compiler/tune/tune-record.ts), checked against the model before use */
  readonly tuned?: TunedChoices;
  /** where to read `tuned` from when it is not given: a tune.json or an artifact directory with one (`nincc build --tuned`), or the per-user cache of a GPU's timed tunings */
  readonly tuneFrom?: TuneSource;
  /**
   * emu/cuda only: leave kernels.cpu.so out, so the artifact loads on emu (and cuda) only. For tests that check
   * the emu kernels against a cpu-target build of their own: the cpu library's g++ -O3 compile (every conv
   * algorithm the cpu kernels dispatch to) is most of an emu build's time, about 4x the emu library's. Not part of
   * the build hash: the emu library is the same file (one cache entry) either way, and a whole build is up to date
   * for a build without the cpu library (never the reverse: kernels.cpu.so is missing).
   */
  readonly withoutCpuLibrary?: boolean;
  readonly log?: (line: string) => void;
}

export interface BuildResult {
  readonly dir: string;
  readonly plan: Plan;
  readonly cached: boolean; // nothing was regenerated or recompiled
  readonly seconds: number;
}

function writeIfChanged(path: string, text: string): void {
  if (existsSync(path) && readFileSync(path, 'utf8') === text) return;
  writeFileSync(path, text);
}

/**
 * The choices of a tune.json (or DIR/tune.json) for this model, checked (errors name the file and field); or those
 * the per-user cache holds for the GPU, if any; and, for the cache, what report.txt says of where they came from.
 */
function readTunedChoices(from: TuneSource, model: ShapedModel, maxBatch: number, precision: Precision): { tuned?: TunedChoices; origin?: string } {
  const hash = modelHash(model, maxBatch, precision);
  if ('noLookup' in from) return { origin: `no timed tuning looked up: ${from.noLookup}` };
  if ('cachedFor' in from) {
    const cached = tuneCacheFile(from.cachedFor, hash);
    if (!existsSync(cached)) return { origin: `no timed tuning for ${from.cachedFor} and this model, max batch and precision at ${cached}: nincc tune on this GPU records one` };
    const tuned = choicesFor(parseTuneFile(readFileSync(cached, 'utf8'), cached), cached, from.cachedFor, hash, convLayers(model));
    return { tuned, origin: `reused by itself from ${cached} (nincc build --no-tuned leaves it out)` };
  }
  const file = existsSync(from.file) && statSync(from.file).isDirectory() ? join(from.file, TUNE_FILE) : from.file;
  if (!existsSync(file)) throw new TuneRecordError(`${file}: no such file (run nincc tune on the artifact first)`);
  return { tuned: choicesFor(parseTuneFile(readFileSync(file, 'utf8'), file), file, from.gpu, hash, convLayers(model)) };
}

export function buildArtifact(model: ShapedModel, source: string, options: BuildOptions): BuildResult {
  const started = Date.now();
  const log = options.log ?? (() => {});
  const maxBatch = options.maxBatch ?? model.train?.batch ?? 128;
  const features = cpuFeatures(options.cpu);
  const cpuL3Bytes = buildL3Bytes(options.cpu, options.ablations);
  const precision = effectivePrecision(options.target, options.precision ?? model.train?.precision ?? 'fp32');
  const read = options.tuned === undefined && options.tuneFrom ? readTunedChoices(options.tuneFrom, model, maxBatch, precision) : {};
  const tuned = options.tuned ?? read.tuned;
  if (options.withoutCpuLibrary && options.target === 'cpu') throw new Error('withoutCpuLibrary: a cpu build is its cpu library');
  const withoutCpu = options.withoutCpuLibrary === true;
  // Only the bf16 folded weight gradients choose their splits by GPU: any other build is the same for every GPU.
  const splitsGpu = options.gpu !== undefined && options.target !== 'cpu' && precision === 'bf16' ? options.gpu.toLowerCase() : undefined;
  const sourceHash = createHash('sha256')
    .update(JSON.stringify({ source, file: model.file, target: options.target, maxBatch, cpuFeatures: features, version: NINCC_VERSION }))
    .update(compilerDigest())
    .update(options.target !== 'cpu' ? emuCompilerCommand('', '').join(' ') : '')
    // A new CUDA toolkit rebuilds a cuda artifact's fatbin rather than calling the old one up to date.
    .update(options.target === 'cuda' ? `nvcc ${findNvcc().version ?? 'none'}` : '')
    .update(headersDigest())
    // fp32 adds nothing, so an fp32 build's hash is what it was before precision existed.
    .update(precision === 'fp32' ? '' : `precision ${precision}`)
    .update(options.input ? `input ${options.input}` : '')
    .update(ablationsDigest(options.ablations))
    .update(tunedDigest(tuned))
    .update(cpuL3Bytes !== undefined ? `cpu L3 ${cpuL3Bytes}` : '')
    .update(splitsGpu !== undefined ? `wgrad splits for ${splitsGpu}` : '')
    .digest('hex');
  const dir = options.outDir;
  const planPath = join(dir, 'plan.json');
  const library = 'kernels.cpu.so';
  const emuLibrary = 'kernels.emu.so';
  const fatbin = 'kernels.fatbin';
  const libraries: Record<string, string> = withoutCpu ? {} : { cpu: library };
  if (options.target !== 'cpu') libraries.emu = emuLibrary;
  if (options.target === 'cuda') libraries.cuda = fatbin;
  if (existsSync(planPath) && Object.values(libraries).every((l) => existsSync(join(dir, l)))) {
    try {
      const old = JSON.parse(readFileSync(planPath, 'utf8')) as Plan;
      // A library edited or damaged since the build fails its hash: rebuild rather than call it up to date.
      if (old.sourceHash === sourceHash && integrityProblem(dir) === undefined) {
        log(`${dir}: up to date (cache hit ${sourceHash.slice(0, 12)})`);
        return { dir, plan: old, cached: true, seconds: (Date.now() - started) / 1000 };
      }
    } catch {
      // an unreadable old plan is simply rebuilt
    }
  }
  if (options.target === 'cuda') requireNvcc(join(dir, 'kernels.cu')); // before anything slow
  const compileOptions: CompileOptions = { target: options.target, maxBatch, sourceHash, libraries, cpuFeatures: features, precision, ...(options.input ? { input: options.input } : {}), ...(options.ablations ? { ablations: options.ablations } : {}), ...(tuned ? { tuned } : {}), ...(cpuL3Bytes !== undefined && { cpuL3Bytes }), ...(splitsGpu !== undefined ? { gpu: splitsGpu } : {}) };
  mkdirSync(dir, { recursive: true });
  const cuPath = join(dir, 'kernels.cu');
  // --target cuda: the cuda device's module (nvcc required); --target emu: a compile check where nvcc exists.
  const nvccOf = (cu: CudaSource): NvccCheck => {
    writeIfChanged(cuPath, cu.text);
    log(`compiling ${cu.kernels.length} cuda kernels with nvcc (sm_80, sm_90, compute_90 PTX)…`);
    const nvcc = nvccCompile(cu.text, cuPath, join(dir, fatbin), options.target === 'cuda');
    log(nvcc.available ? `fatbin: ${nvcc.cached ? 'cache hit' : 'compiled'}` : `fatbin: skipped (${nvcc.reason})`);
    return nvcc;
  };
  const { compiled, nvcc, wgradResidentBlocks } = compileAtResidency(model, compileOptions, nvccOf, log);
  let cpuCommand = 'not compiled (built without the cpu library: the artifact loads on emu and cuda only)';
  if (!withoutCpu) {
    const sourcePath = join(dir, 'kernels.cpu.cc');
    writeIfChanged(sourcePath, compiled.cpu.text);
    log(`compiling ${compiled.cpu.kernels.length} kernels (${sourcePath})…`);
    const cpuLibrary = compileCpuLibrary(compiled.cpu.text, sourcePath, join(dir, library), features, sourceHash);
    log(cpuLibrary.cached ? 'kernel library: cache hit' : 'kernel library: compiled');
    cpuCommand = cpuLibrary.command;
  }
  let cuda: { command: string; nvcc: NvccCheck } | undefined;
  if (compiled.cuda && nvcc) {
    const cu = compiled.cuda.source;
    log(`compiling ${cu.kernels.length} cuda kernels for the emulator (${cuPath})…`);
    const emu = compileEmuLibrary(cu.text, cuPath, join(dir, emuLibrary), sourceHash);
    log(emu.cached ? 'emu kernel library: cache hit' : 'emu kernel library: compiled');
    cuda = { command: emu.command, nvcc };
  }
  const plan = compiled.plan;
  writeFileSync(join(dir, 'report.txt'), buildReport(model, compiled, cpuCommand, cuda, tuned, read.origin, splitsGpu !== undefined ? { gpu: splitsGpu, ...(wgradResidentBlocks ? { residentBlocks: wgradResidentBlocks } : {}) } : undefined));
  // The layer IR, for tools that need the network rather than its kernels (export-onnx, docs/onnx.md).
  writeFileSync(join(dir, 'model.json'), JSON.stringify({ format: 'nincc-model', version: 1, sourceHash, model }) + '\n');
  // plan.json last: its presence with a matching hash is what marks the directory complete. Sealed with the
  // SHA-256 of each library and of its own text, which the runtime checks before loading anything.
  writeFileSync(planPath, sealPlan(plan, dir));
  return { dir, plan, cached: false, seconds: (Date.now() - started) / 1000 };
}

/**
 * The precision the target's GEMM kernels compute in. The cpu kernels are fp32 only: a cpu build computes
 * in fp32 whatever was asked (the cpu device is the exact reference). tf32 has no kernels yet.
 */
function effectivePrecision(target: Target, requested: Precision): Precision {
  if (requested === 'tf32' && target !== 'cpu') throw new Error(`precision tf32: no tf32 kernels yet (issue #15); use fp32 or bf16`);
  return target === 'cpu' ? 'fp32' : requested;
}

let compilerHash: string | undefined;
/** Every compiler source and template takes part in the build hash: a lowering change rebuilds artifacts. */
function compilerDigest(): string {
  if (compilerHash) return compilerHash;
  const h = createHash('sha256');
  const here = dirname(fileURLToPath(import.meta.url));
  // Every folder under compiler/ (front, lower, schedule, emit, backends/…), the templates beside their renderer.
  for (const name of readdirSync(here, { recursive: true, encoding: 'utf8' }).sort()) {
    if (/\.(js|ts|njk)$/.test(name)) h.update(name).update(readFileSync(join(here, name)));
  }
  compilerHash = h.digest('hex');
  return compilerHash;
}
