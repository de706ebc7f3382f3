// build(): a spec file to an artifact directory without blocking the event loop. The compiler's
// buildArtifact runs g++ (and nvcc) synchronously for seconds, so it runs in a worker thread here;
// the CLI's `nincc build` and API users both come through this.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { TARGETS, type BuildResult, type Target } from '../compiler/build.js';
import { CPU_LEVELS, type CpuLevel } from '../compiler/backends/cpu/toolchain.js';
import { PRECISIONS, type Precision } from '../compiler/ir.js';
import type { TuneSource } from '../compiler/tune/tune-record.js';
import type { Diagnostic } from '../grammar/diagnostics.js';
import type { BuildJob, BuildMessage } from './build-worker.js';
import { ErrorCodes, InvalidArgumentError, NinccError } from './errors.js';

export interface BuildOptions {
  /** The artifact directory (default: build/<model name>, relative to the working directory). */
  readonly outDir?: string;
  /** cpu (default), emu or cuda; see `nincc build --help`. */
  readonly target?: Target;
  /** The largest batch the artifact runs (default: the train block's batch, else 128). */
  readonly maxBatch?: number;
  /** The instruction set kernels.cpu.so may use: native (default, this machine's vector extensions), avx2, avx512 or portable (baseline x86-64). */
  readonly cpu?: CpuLevel;
  /** The emu/cuda GEMM kernels' arithmetic, overriding the spec's train block `precision`: fp32 (default), bf16 or tf32 (no kernels yet). */
  readonly precision?: Precision;
  /** 'u8': the artifact takes uint8 N×H×W×C images, normalised by its first conv (docs/artifact.md#imageinput); default float32 N×C×H×W. */
  readonly input?: 'u8';
  /** Per-layer configurations from `nincc tune`: a tune.json (or an artifact directory with one), and which GPU's entry (absent: its only one). */
  readonly tuneFrom?: TuneSource;
  /** a100, h100 or h200: the GPU an emu/cuda build's bf16 weight gradients choose their split counts for (compiler/lower/wgrad-splits-waves.ts) */
  readonly gpu?: string;
  /** The spec's text; when given, `file` only names it in diagnostics and is not read. */
  readonly source?: string;
  /** Progress lines (what the compiler is doing); nothing by default. */
  readonly log?: (line: string) => void;
}

export interface BuiltArtifact extends BuildResult {
  /** Warnings the front end reported (errors reject instead), and the same rendered with carets ('' when none). */
  readonly warnings: readonly Diagnostic[];
  readonly warningReport: string;
  /** A build that preferred uint8 input (the CLI's default for image data) but was made for float32: why. */
  readonly floatBecause?: string;
}

/** A spec with errors: `diagnostics` holds them, `message` the rendered report with carets. */
export class SpecError extends NinccError {
  readonly diagnostics: readonly Diagnostic[];
  /** The diagnostics rendered as `nincc check` prints them. */
  readonly report: string;
  constructor(file: string, diagnostics: readonly Diagnostic[], rendered: string) {
    const count = diagnostics.filter((d) => d.severity === 'error').length;
    super(ErrorCodes.spec, `${file}: ${count} error${count === 1 ? '' : 's'} in the spec\n${rendered}`);
    this.name = 'SpecError';
    this.diagnostics = diagnostics;
    this.report = rendered;
  }
}

/** The compiled worker script: beside this module in dist/, or dist's copy when this runs from its .ts source (vitest). */
function workerScript(): URL {
  const here = new URL('./build-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const compiled = new URL('../dist/runtime/build-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(compiled))) return compiled;
  throw new NinccError(ErrorCodes.runtime, `the build worker ${fileURLToPath(compiled)} is not built: run 'npx tsc -p tsconfig.json'`);
}

/** Compiles and builds `file` (a .model spec) into an artifact directory; identical builds are cache hits. */
export async function build(file: string, options?: BuildOptions | null): Promise<BuiltArtifact> {
  if (typeof file !== 'string' || file === '') throw new InvalidArgumentError(`build: file must be a .model file path (a non-empty string), got ${typeof file}`);
  const o = options ?? {};
  if (typeof o !== 'object') throw new InvalidArgumentError(`build: options must be an object, got ${typeof o}`);
  const target = o.target ?? 'cpu';
  if (!TARGETS.includes(target)) throw new InvalidArgumentError(`build: target must be one of ${TARGETS.join(', ')}, got ${JSON.stringify(target)}`);
  if (o.maxBatch !== undefined && (!Number.isInteger(o.maxBatch) || o.maxBatch < 1)) throw new InvalidArgumentError(`build: maxBatch must be a positive integer, got ${String(o.maxBatch)}`);
  if (o.cpu !== undefined && !CPU_LEVELS.includes(o.cpu)) throw new InvalidArgumentError(`build: cpu must be one of ${CPU_LEVELS.join(', ')}, got ${JSON.stringify(o.cpu)}`);
  if (o.precision !== undefined && !PRECISIONS.includes(o.precision)) throw new InvalidArgumentError(`build: precision must be one of ${PRECISIONS.join(', ')}, got ${JSON.stringify(o.precision)}`);
  if (o.input !== undefined && o.input !== 'u8') throw new InvalidArgumentError(`build: input must be 'u8' (or absent: float32), got ${JSON.stringify(o.input)}`);
  if (o.outDir !== undefined && (typeof o.outDir !== 'string' || o.outDir === '')) throw new InvalidArgumentError('build: outDir must be a non-empty string');
  let source = o.source;
  if (source === undefined) {
    try {
      source = await readFile(file, 'utf8');
    } catch (e) {
      throw new NinccError(ErrorCodes.spec, `${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`, { cause: e });
    }
  } else if (typeof source !== 'string') throw new InvalidArgumentError('build: source must be a string');
  const job: BuildJob = { source, file, target, ...(o.outDir !== undefined ? { outDir: o.outDir } : {}), ...(o.maxBatch !== undefined ? { maxBatch: o.maxBatch } : {}), ...(o.cpu !== undefined ? { cpu: o.cpu } : {}), ...(o.precision !== undefined ? { precision: o.precision } : {}), ...(o.input !== undefined ? { input: o.input } : {}), ...(o.tuneFrom !== undefined ? { tuneFrom: o.tuneFrom } : {}), ...(o.gpu !== undefined ? { gpu: o.gpu } : {}) };
  return runBuildJob(job, o.log ?? (() => {}));
}

/** One build in a fresh worker thread; `log` receives its progress lines. */
export function runBuildJob(job: BuildJob, log: (line: string) => void): Promise<BuiltArtifact> {
  const file = job.file;
  return new Promise<BuiltArtifact>((resolve, reject) => {
    const worker = new Worker(workerScript(), { workerData: job });
    let settled = false;
    const settle = (f: () => void) => {
      if (!settled) {
        settled = true;
        f();
      }
    };
    worker.on('message', (m: BuildMessage) => {
      if (m.kind === 'log') log(m.line);
      else if (m.kind === 'done') settle(() => resolve({ ...m.result, warnings: m.warnings, warningReport: m.rendered, ...(m.floatBecause !== undefined ? { floatBecause: m.floatBecause } : {}) }));
      else if (m.kind === 'spec-errors') settle(() => reject(new SpecError(file, m.diagnostics, m.rendered)));
      else settle(() => reject(new NinccError(ErrorCodes.runtime, m.message)));
    });
    worker.on('error', (e) => settle(() => reject(e)));
    worker.on('exit', (code) => settle(() => reject(new NinccError(ErrorCodes.runtime, `the build worker exited with code ${code} before finishing`))));
  });
}
