// Compiles generated C++ into a kernel library with g++, caching the result by content hash.
import { join } from 'node:path';
import { packageRoot } from '../../package-root.js';
import { compileCached } from '../compile-cached.js';
import { hostCpuFlags } from '../../../runtime/cpu-features.js';

/**
 * What instruction set the kernel library may use (`nincc build --cpu`): `native`, the vector extensions
 * this machine has (AVX-512 when present, else AVX2/FMA, else none), as a JIT's output would; `avx2` and
 * `avx512` for a known fleet; `portable`, baseline x86-64 (SSE2), which loads anywhere.
 */
export type CpuLevel = 'native' | 'avx2' | 'avx512' | 'portable';
export const CPU_LEVELS: readonly CpuLevel[] = ['native', 'avx2', 'avx512', 'portable'];

// /proc/cpuinfo flag names; g++ spells each as -m<name>, and plan.json lists them as cpuFeatures.
const AVX2_FEATURES = ['avx2', 'fma'];
const AVX512_FEATURES = [...AVX2_FEATURES, 'avx512f', 'avx512bw', 'avx512dq', 'avx512vl'];

/** The CPU features (cpuinfo names) a library built for `level` needs on the machine that loads it. */
export function cpuFeatures(level: CpuLevel = 'native', host: ReadonlySet<string> = hostCpuFlags() ?? new Set()): string[] {
  if (level === 'portable') return [];
  if (level === 'avx2') return [...AVX2_FEATURES];
  if (level === 'avx512') return [...AVX512_FEATURES];
  if (AVX512_FEATURES.every((f) => host.has(f))) return [...AVX512_FEATURES];
  return AVX2_FEATURES.every((f) => host.has(f)) ? [...AVX2_FEATURES] : [];
}

/** g++'s flags for those features: explicit, not -march=native, so the cache key says what the library needs. */
export function cpuFlags(features: readonly string[] = cpuFeatures()): string[] {
  return features.map((f) => `-m${f}`);
}

export function compilerCommand(source: string, output: string, features: readonly string[] = cpuFeatures()): string[] {
  const include = join(packageRoot(), 'runtime/include');
  return ['g++', '-std=c++17', '-O3', '-fopenmp', '-fPIC', '-shared', '-fvisibility=hidden', '-fvisibility-inlines-hidden', '-Wl,-Bsymbolic', ...cpuFlags(features), `-I${include}`, source, '-o', output];
}

/**
 * Compiles `source` (already written at sourcePath) to `output`; returns whether the cache had it. `identity`:
 * the build's source hash, shared with other builds of the same kernels (compile-cached.ts CachedCompile).
 */
export function compileCpuLibrary(sourceText: string, sourcePath: string, output: string, features?: readonly string[], identity?: string): { cached: boolean; command: string } {
  const command = compilerCommand(sourcePath, output, features);
  return compileCached({ kind: 'cpu', command, keyCommand: command.slice(0, -3), sourceText, sourcePath, output, what: 'g++', ...(identity ? { identity } : {}) });
}
