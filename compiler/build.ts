// `nincc build`: spec → artifact directory (plan.json, generated kernels, compiled library, report.txt).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateCpuSource } from './codegen-cpu.js';
import { CUDA_ONLY_PROGRAMS, generateCudaSource, withLaunchRules } from './codegen-cuda.js';
import { compileEmuLibrary, emuCompilerCommand, findNvcc, nvccCompile, requireNvcc, type NvccCheck } from './cuda-toolchain.js';
import { compileCpuLibrary, headersDigest } from './cpu-toolchain.js';
import { integrityProblem, sealPlan } from './artifact-integrity.js';
import { NINCC_VERSION, type Plan } from './emit-plan.js';
import { inspectText } from './inspect.js';
import { trainingFusionReport } from './fusion-report.js';
import { convAlgorithmReport } from './cpu-conv-algorithm.js';
import type { ShapedModel } from './ir.js';
import type { Program } from './plan-ir.js';
import { lowerModel, type Lowered } from './pipeline.js';
import { torchModuleString } from './torch-print.js';

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

function report(model: ShapedModel, lowered: Lowered, cpuPrograms: readonly Program[], compileCommand: string, cuda?: { command: string; nvcc: NvccCheck; fusion: string[] }): string {
  const lines = [inspectText(model), '', 'Inference fusion (BN folded into the conv before it, ReLU in the GEMM epilogue):'];
  for (const g of lowered.inferenceGroups) {
    const parts = [g.head, ...(g.bn ? [g.bn] : []), ...(g.relu ? [g.relu] : [])];
    if (parts.length > 1) lines.push(`  (${parts.map((p) => p.index).join(') + (')}): ${parts.map((p) => torchModuleString(p)).join(' + ')} → k${g.head.index}_${g.head.kind}_infer`);
  }
  lines.push('', ...convAlgorithmReport(cpuPrograms));
  if (cuda && cuda.fusion.length > 0) lines.push('', ...cuda.fusion);
  lines.push('', 'Programs:');
  for (const [name, p] of Object.entries(lowered.plan.programs)) {
    lines.push(`  ${name}: ${p.steps.length} kernel call${p.steps.length === 1 ? '' : 's'}`);
    for (const s of p.steps) lines.push(`    ${s.kernel.padEnd(28)} ${s.source}`);
  }
  const s = lowered.plan.spaces;
  const mb = (floats: number) => `${((floats * 4) / 2 ** 20).toFixed(2)} MiB`;
  lines.push(
    '',
    'Memory (4-byte elements):',
    `  parameters ${s.param} (${mb(s.param)}), and as much again for gradients and momentum`,
    `  running statistics ${s.state}, fixed scratch ${s.fixed} (${mb(s.fixed)})`,
    `  activations ${s.act} per image (${mb(s.act)}), ${mb(s.act * lowered.plan.maxBatch)} at the maximum batch ${lowered.plan.maxBatch}`,
    '',
    `Compiled with: ${compileCommand}`,
  );
  if (cuda) {
    lines.push('', `CUDA kernels (kernels.cu: inference and the fused training programs) for the emu device: ${cuda.command}`);
    if (!cuda.nvcc.available) lines.push(`nvcc: not found (${cuda.nvcc.reason}), no GPU compile check and no kernels.fatbin`);
    else {
      lines.push(`nvcc (kernels.fatbin${cuda.nvcc.cached ? ', cache hit' : ''}): ${cuda.nvcc.command}`, 'ptxas registers, static shared memory and spills per kernel:');
      for (const k of cuda.nvcc.kernels) {
        lines.push(`  ${k.arch} ${k.kernel.padEnd(28)} ${String(k.registers).padStart(3)} registers, ${String(k.sharedBytes).padStart(5)} B smem, spill stores ${k.spillStores} B, loads ${k.spillLoads} B`);
      }
    }
  }
  if (lowered.plan.untrainable) lines.push('', `No training programs: ${lowered.plan.untrainable}.`);
  return lines.join('\n') + '\n';
}

export function buildArtifact(model: ShapedModel, source: string, options: BuildOptions): BuildResult {
  const started = Date.now();
  const log = options.log ?? (() => {});
  const maxBatch = options.maxBatch ?? model.train?.batch ?? 128;
  const sourceHash = createHash('sha256')
    .update(JSON.stringify({ source, file: model.file, target: options.target, maxBatch, version: NINCC_VERSION }))
    .update(compilerDigest())
    .update(options.target !== 'cpu' ? emuCompilerCommand('', '').join(' ') : '')
    // A new CUDA toolkit rebuilds a cuda artifact's fatbin rather than calling the old one up to date.
    .update(options.target === 'cuda' ? `nvcc ${findNvcc().version ?? 'none'}` : '')
    .update(headersDigest())
    .digest('hex');
  const dir = options.outDir;
  const planPath = join(dir, 'plan.json');
  const library = 'kernels.cpu.so';
  const emuLibrary = 'kernels.emu.so';
  const fatbin = 'kernels.fatbin';
  const libraries: Record<string, string> = { cpu: library };
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
  const lowered = lowerModel(model, { maxBatch, sourceHash, libraries, trainKernels: options.target === 'cpu' ? 'cpu' : 'cuda' });
  mkdirSync(dir, { recursive: true });
  // A cuda/emu artifact's training program is the fused one (lower-train-fused.ts), which only the
  // cuda kernels implement: its cpu library serves inference only (the cpu device says so if asked to train).
  const cpuPrograms = options.target === 'cpu' ? lowered.programs : lowered.programs.filter((p) => !CUDA_ONLY_PROGRAMS.includes(p.name));
  const cpu = generateCpuSource(cpuPrograms, lowered.plan, { model: model.name, file: model.file, sourceHash });
  const sourcePath = join(dir, 'kernels.cpu.cc');
  writeIfChanged(sourcePath, cpu.text);
  log(`compiling ${cpu.kernels.length} kernels (${sourcePath})…`);
  const compiled = compileCpuLibrary(cpu.text, sourcePath, join(dir, library));
  log(compiled.cached ? 'kernel library: cache hit' : 'kernel library: compiled');
  let plan = lowered.plan;
  let cuda: { command: string; nvcc: NvccCheck; fusion: string[] } | undefined;
  if (options.target !== 'cpu') {
    const cu = generateCudaSource(lowered.programs, { model: model.name, file: model.file, sourceHash });
    const cuPath = join(dir, 'kernels.cu');
    writeIfChanged(cuPath, cu.text);
    log(`compiling ${cu.kernels.length} cuda kernels for the emulator (${cuPath})…`);
    const emu = compileEmuLibrary(cu.text, cuPath, join(dir, emuLibrary));
    log(emu.cached ? 'emu kernel library: cache hit' : 'emu kernel library: compiled');
    // --target cuda: the cuda device's module (nvcc required); --target emu: a compile check where nvcc exists.
    log(`compiling ${cu.kernels.length} cuda kernels with nvcc (sm_80, sm_90, compute_90 PTX)…`);
    const nvcc = nvccCompile(cu.text, cuPath, join(dir, fatbin), options.target === 'cuda');
    log(nvcc.available ? `fatbin: ${nvcc.cached ? 'cache hit' : 'compiled'}` : `fatbin: skipped (${nvcc.reason})`);
    const train = lowered.programs.find((p) => p.name === 'train_forward_backward');
    cuda = { command: emu.command, nvcc, fusion: train ? trainingFusionReport(model, train, cu.fused) : [] };
    plan = withLaunchRules(plan, cu.launch);
  }
  writeFileSync(join(dir, 'report.txt'), report(model, lowered, cpuPrograms, compiled.command, cuda));
  // The layer IR, for tools that need the network rather than its kernels (export-onnx, docs/onnx.md).
  writeFileSync(join(dir, 'model.json'), JSON.stringify({ format: 'nincc-model', version: 1, sourceHash, model }) + '\n');
  // plan.json last: its presence with a matching hash is what marks the directory complete. Sealed with the
  // SHA-256 of each library and of its own text, which the runtime checks before loading anything.
  writeFileSync(planPath, sealPlan(plan, dir));
  return { dir, plan, cached: false, seconds: (Date.now() - started) / 1000 };
}

let compilerHash: string | undefined;
/** Every compiler source and template takes part in the build hash: a lowering change rebuilds artifacts. */
function compilerDigest(): string {
  if (compilerHash) return compilerHash;
  const h = createHash('sha256');
  const here = dirname(fileURLToPath(import.meta.url));
  for (const dir of [here, join(here, 'templates')]) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir).sort()) if (/\.(js|ts|njk)$/.test(name)) h.update(name).update(readFileSync(join(dir, name)));
  }
  compilerHash = h.digest('hex');
  return compilerHash;
}
