// The last-level (L3) cache of the machine a native cpu build runs on, for the conv cost model
// (cpu-conv-algorithm.ts): whether a Winograd variant's transformed weights are re-read from L3 or memory.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isOn, type Ablations } from '../ablations.js';
import type { CpuLevel } from '../backends/cpu/toolchain.js';

/** Bytes of a sysfs cache `size` ("307200K", "32M", "512"); undefined when it does not read as one. */
export function parseCacheSize(text: string): number | undefined {
  const m = /^\s*(\d+)\s*([KMG]?)\s*$/i.exec(text);
  if (!m) return undefined;
  const unit = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30 }[m[2].toUpperCase() as '' | 'K' | 'M' | 'G'];
  return Number(m[1]) * unit;
}

/**
 * The largest unified level-3 cache cpu0 reports under `cacheDir` (Linux sysfs: index*\/level, type, size);
 * undefined where there is none to read (not Linux, no L3 listed), so the cost model keeps its default.
 */
export function hostL3Bytes(cacheDir = '/sys/devices/system/cpu/cpu0/cache'): number | undefined {
  let sizes: number[];
  try {
    const read = (index: string, field: string) => readFileSync(join(cacheDir, index, field), 'utf8').trim();
    sizes = readdirSync(cacheDir)
      .filter((index) => /^index\d+$/.test(index) && read(index, 'level') === '3' && read(index, 'type') !== 'Instruction')
      .map((index) => parseCacheSize(read(index, 'size')))
      .filter((bytes): bytes is number => bytes !== undefined && bytes > 0);
  } catch {
    return undefined;
  }
  return sizes.length > 0 ? Math.max(...sizes) : undefined;
}

/**
 * The L3 a build's conv algorithm choice reads: the build machine's for a native library (which runs
 * where it is built), unless the hostL3 ablation is off; none (the model's default) for a library
 * built for an ISA level, which may run anywhere.
 */
export function buildL3Bytes(level: CpuLevel | undefined, ablations: Ablations | undefined, readHost: () => number | undefined = hostL3Bytes): number | undefined {
  return (level ?? 'native') === 'native' && isOn(ablations, 'hostL3') ? readHost() : undefined;
}
