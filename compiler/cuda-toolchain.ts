// Compiles generated CUDA (kernels.cu): with g++ -DNINCC_EMU into the emu device's library
// (docs/emu.md), cached by content hash like the cpu library; and, where nvcc exists, with nvcc for
// sm_80 and sm_90 as a compile check whose `ptxas -v` lines give registers and spills per kernel.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir, headersDigest, ToolchainError } from './cpu-toolchain.js';
import { packageRoot } from './package-root.js';

const quote = (args: readonly string[]) => args.map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' ');

export function emuCompilerCommand(source: string, output: string): string[] {
  const include = join(packageRoot(), 'runtime/include');
  const checks = process.env.NINCC_EMU_CHECKS ? ['-DNINCC_EMU_CHECKS'] : [];
  return ['g++', '-std=c++17', '-O2', '-DNINCC_EMU', ...checks, '-fPIC', '-shared', '-fvisibility=hidden', '-fvisibility-inlines-hidden', `-I${include}`, '-x', 'c++', source, '-o', output];
}

/** Compiles `sourceText` (already written at sourcePath) into the emu library `output`. */
export function compileEmuLibrary(sourceText: string, sourcePath: string, output: string): { cached: boolean; command: string } {
  const probe = emuCompilerCommand(sourcePath, output);
  const key = createHash('sha256').update(sourceText).update(probe.slice(0, -4).join(' ')).update(headersDigest()).digest('hex');
  const cached = join(cacheDir(), 'emu', `${key}.so`);
  const command = quote(probe);
  if (existsSync(cached)) {
    copyFileSync(cached, output);
    return { cached: true, command };
  }
  const r = spawnSync(probe[0], probe.slice(1), { encoding: 'utf8' });
  if (r.error) throw new ToolchainError(`cannot run g++ (${r.error.message}); install it (apt-get install g++)`);
  if (r.status !== 0) throw new ToolchainError(`g++ -DNINCC_EMU failed on the generated ${sourcePath}:\n${r.stderr.trim()}\nrepro: ${command}`);
  mkdirSync(join(cacheDir(), 'emu'), { recursive: true });
  const tmp = `${cached}.tmp-${process.pid}`;
  copyFileSync(output, tmp);
  renameSync(tmp, cached);
  return { cached: false, command };
}

export interface PtxasKernel {
  readonly kernel: string;
  readonly arch: string;
  readonly registers: number;
  readonly spillStores: number;
  readonly spillLoads: number;
}

export interface NvccCheck {
  readonly available: boolean;
  readonly command?: string;
  readonly kernels: readonly PtxasKernel[];
}

/** `ptxas -v` output → registers and spills per kernel and arch. */
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
      out.push({ ...current, registers: Number(regs[1]) });
      current = undefined;
    }
  }
  return out;
}

function nvccPath(): string | undefined {
  if (process.env.NINCC_NVCC === '0') return undefined;
  const r = spawnSync('nvcc', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? 'nvcc' : undefined;
}

/** Compiles the source with nvcc for sm_80 and sm_90 into `output` (a fatbin); skipped without nvcc. */
export function nvccCompile(sourcePath: string, output: string): NvccCheck {
  const nvcc = nvccPath();
  if (!nvcc) return { available: false, kernels: [] };
  const include = join(packageRoot(), 'runtime/include');
  const args = ['-std=c++17', '-O3', '-fatbin', '-gencode', 'arch=compute_80,code=sm_80', '-gencode', 'arch=compute_90,code=sm_90', '-Xptxas', '-v', `-I${include}`, '-x', 'cu', sourcePath, '-o', output];
  const command = quote([nvcc, ...args]);
  const r = spawnSync(nvcc, args, { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new ToolchainError(`nvcc failed on the generated ${sourcePath}:\n${(r.stderr ?? '').trim()}\nrepro: ${command}`);
  return { available: true, command, kernels: parsePtxas(`${r.stdout}\n${r.stderr}`) };
}
