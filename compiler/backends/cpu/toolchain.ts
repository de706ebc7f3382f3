// Compiles generated C++ into a kernel library with g++, caching the result by content hash.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../package-root.js';
import { compileCached } from '../compile-cached.js';

/**
 * The vector extensions this CPU has, as explicit flags (not -march=native, so the cache key says what
 * the library needs): AVX-512 when present, else AVX2/FMA. The library runs where it was built, as a
 * JIT's output would.
 */
export function cpuFlags(): string[] {
  let info = '';
  try {
    info = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return [];
  }
  const flags = new Set((/^flags\s*:(.*)$/m.exec(info)?.[1] ?? '').trim().split(/\s+/));
  const out = flags.has('avx2') && flags.has('fma') ? ['-mavx2', '-mfma'] : [];
  const avx512 = ['avx512f', 'avx512bw', 'avx512dq', 'avx512vl'];
  if (out.length > 0 && avx512.every((f) => flags.has(f))) out.push(...avx512.map((f) => `-m${f}`));
  return out;
}

export function compilerCommand(source: string, output: string): string[] {
  const include = join(packageRoot(), 'runtime/include');
  return ['g++', '-std=c++17', '-O3', '-fopenmp', '-fPIC', '-shared', '-fvisibility=hidden', '-fvisibility-inlines-hidden', '-Wl,-Bsymbolic', ...cpuFlags(), `-I${include}`, source, '-o', output];
}

/** Compiles `source` (already written at sourcePath) to `output`; returns whether the cache had it. */
export function compileCpuLibrary(sourceText: string, sourcePath: string, output: string): { cached: boolean; command: string } {
  const command = compilerCommand(sourcePath, output);
  return compileCached({ kind: 'cpu', command, keyCommand: command.slice(0, -3), sourceText, sourcePath, output, what: 'g++' });
}
