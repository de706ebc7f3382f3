// Compiles generated CUDA (kernels.cu): with g++ -DNINCC_EMU into the emu device's library
// (docs/emu.md), and with nvcc into kernels.fatbin for the cuda device (sm_80, sm_90 + compute_90 PTX),
// each cached by content hash like the cpu library; `ptxas -v` gives registers, smem and spills per kernel.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../package-root.js';
import { cacheDir, compileCached, headersDigest, quoteCommand, ToolchainError } from '../compile-cached.js';


/**
 * The emu library's optimization level: -O2, or NINCC_EMU_OPT (-O0 to -O3; the tests set -O1 in vitest.config.ts).
 * The emulated kernels' source and semantics are the same at any level; -O1 compiles in about 0.7 of -O2's CPU time
 * (half with ASan's -g1) and ran nin-fashion's training step as fast (bench/logs/ciU-times.md). Part of the cache key.
 */
export function emuOptFlag(): string {
  const level = process.env.NINCC_EMU_OPT;
  if (level === undefined || level === '') return '-O2';
  if (!/^-O[0-3]$/.test(level)) throw new ToolchainError(`NINCC_EMU_OPT=${level}: expected -O0, -O1, -O2 or -O3`);
  return level;
}

export function emuCompilerCommand(source: string, output: string): string[] {
  const include = join(packageRoot(), 'runtime/include');
  const checks = process.env.NINCC_EMU_CHECKS ? ['-DNINCC_EMU_CHECKS'] : [];
  // NINCC_EMU_ASAN=1: AddressSanitizer over the kernels (node then needs LD_PRELOAD=libasan.so; scripts/test-emu-asan.sh).
  // -g1: line tables, all a report's file:line needs (the script's probe checks one), at about 3/4 of -g's compile time.
  const asan = process.env.NINCC_EMU_ASAN === '1' ? ['-g1', '-fsanitize=address', '-fno-omit-frame-pointer'] : [];
  return ['g++', '-std=c++17', emuOptFlag(), '-DNINCC_EMU', ...checks, ...asan, '-fPIC', '-shared', '-fvisibility=hidden', '-fvisibility-inlines-hidden', '-Wl,-Bsymbolic', `-I${include}`, '-x', 'c++', source, '-o', output];
}

/** Compiles `sourceText` (already written at sourcePath) into the emu library `output`; `identity` as compileCpuLibrary's. */
export function compileEmuLibrary(sourceText: string, sourcePath: string, output: string, identity?: string): { cached: boolean; command: string } {
  const command = emuCompilerCommand(sourcePath, output);
  return compileCached({ kind: 'emu', command, keyCommand: command.slice(0, -4), sourceText, sourcePath, output, what: 'g++ -DNINCC_EMU', ...(identity ? { identity } : {}) });
}

export interface PtxasKernel {
  readonly kernel: string;
  readonly arch: string;
  readonly registers: number;
  readonly sharedBytes: number; // static shared memory ("bytes smem"); the launch adds its dynamic part
  readonly spillStores: number;
  readonly spillLoads: number;
}

export interface NvccCheck {
  readonly available: boolean;
  readonly reason?: string; // why there is no fatbin (available false)
  readonly command?: string;
  readonly cached?: boolean;
  readonly kernels: readonly PtxasKernel[];
}

/** `ptxas -v` output → registers, static shared memory and spills per kernel and arch. */
export function parsePtxas(text: string): PtxasKernel[] {
  const out: PtxasKernel[] = [];
  let current: { kernel: string; arch: string; spillStores: number; spillLoads: number } | undefined;
  for (const line of text.split('\n')) {
    const fn = /Compiling entry function '([^']+)' for '(sm_\d+)'/.exec(line);
    if (fn) current = { kernel: fn[1], arch: fn[2], spillStores: 0, spillLoads: 0 };
    const spill = /(\d+) bytes spill stores, (\d+) bytes spill loads/.exec(line);
    if (spill && current) {
      current.spillStores = Number(spill[1]);
      current.spillLoads = Number(spill[2]);
    }
    const regs = /Used (\d+) registers/.exec(line);
    if (regs && current) {
      const smem = /(\d+) bytes smem/.exec(line);
      out.push({ ...current, registers: Number(regs[1]), sharedBytes: smem ? Number(smem[1]) : 0 });
      current = undefined;
    }
  }
  return out;
}

/** nvcc on PATH, or why not: NINCC_NVCC=0 turns it off, NINCC_NVCC=/path picks one. */
export function findNvcc(): { nvcc?: string; version?: string; reason?: string } {
  const chosen = process.env.NINCC_NVCC;
  if (chosen === '0') return { reason: 'NINCC_NVCC=0 turns it off' };
  const nvcc = chosen && chosen !== '1' ? chosen : 'nvcc';
  const r = spawnSync(nvcc, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return { reason: `${nvcc} not found${r.error ? ` (${r.error.message})` : ''}` };
  return { nvcc, version: /release ([\d.]+)/.exec(r.stdout)?.[1] ?? 'unknown' };
}

/** findNvcc, or a ToolchainError saying how to get nvcc (--target cuda cannot do without it). */
export function requireNvcc(what: string): { nvcc: string; version?: string } {
  const found = findNvcc();
  if (found.nvcc) return { nvcc: found.nvcc, version: found.version };
  throw new ToolchainError(`--target cuda needs nvcc (the CUDA toolkit) to compile ${what}, but ${found.reason}; install the CUDA toolkit and put nvcc on PATH (or set NINCC_NVCC=/path/to/nvcc), or build with --target emu`);
}

/** The fatbin's code: SASS for sm_80 and sm_90, and compute_90 PTX that the driver JIT-compiles for newer GPUs. */
export const CUDA_GENCODE = ['arch=compute_80,code=sm_80', 'arch=compute_90,code=sm_90', 'arch=compute_90,code=compute_90'] as const;

export function nvccCommand(nvcc: string, sourcePath: string, output: string): string[] {
  const include = join(packageRoot(), 'runtime/include');
  // --threads 0: the three targets compile in parallel (each one's ptxas report still comes out whole).
  return [nvcc, '-std=c++17', '-O3', '-fatbin', ...CUDA_GENCODE.flatMap((g) => ['-gencode', g]), '--threads', '0', '-Xptxas', '-v', `-I${include}`, '-x', 'cu', sourcePath, '-o', output];
}

/**
 * Compiles `sourceText` (already written at sourcePath) with nvcc into the fatbin `output`, cached by
 * content hash in cacheDir()/cuda with its ptxas report. Without nvcc: `available: false` and the
 * reason, or a ToolchainError when `required` (--target cuda).
 */
export function nvccCompile(sourceText: string, sourcePath: string, output: string, required = false): NvccCheck {
  const found: { nvcc?: string; version?: string; reason?: string } = required ? requireNvcc(sourcePath) : findNvcc();
  if (!found.nvcc) return { available: false, reason: found.reason, kernels: [] };
  const probe = nvccCommand(found.nvcc, sourcePath, output);
  const command = quoteCommand(probe);
  const key = createHash('sha256').update(sourceText).update(`nvcc ${found.version} `).update(probe.slice(1, -4).join(' ')).update(headersDigest()).digest('hex');
  const cached = join(cacheDir(), 'cuda', `${key}.fatbin`);
  const cachedLog = `${cached}.ptxas.txt`;
  if (existsSync(cached) && existsSync(cachedLog)) {
    copyFileSync(cached, output);
    return { available: true, cached: true, command, kernels: parsePtxas(readFileSync(cachedLog, 'utf8')) };
  }
  const r = spawnSync(probe[0], probe.slice(1), { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error || r.status !== 0) throw new ToolchainError(`nvcc failed on the generated ${sourcePath}:\n${(r.stderr ?? r.error?.message ?? '').trim()}\nrepro: ${command}`);
  const log = `${r.stdout}\n${r.stderr}`;
  mkdirSync(join(cacheDir(), 'cuda'), { recursive: true });
  const tmp = `${cached}.tmp-${process.pid}`;
  writeFileSync(`${cachedLog}.tmp-${process.pid}`, log);
  renameSync(`${cachedLog}.tmp-${process.pid}`, cachedLog);
  copyFileSync(output, tmp);
  renameSync(tmp, cached);
  return { available: true, cached: false, command, kernels: parsePtxas(log) };
}
