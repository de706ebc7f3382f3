// The CPU features an artifact's kernels.cpu.so needs against the ones this machine has, so that a
// library built with AVX-512 fails to load with a message on a machine without it, instead of
// dying of an illegal instruction in the first kernel. plan.json lists them as `cpuFeatures`
// (/proc/cpuinfo flag names, e.g. avx2, fma, avx512f); a plan without the list is not checked.
import { readFileSync } from 'node:fs';

/** This machine's CPU flags from /proc/cpuinfo; undefined where there is none to read (not Linux). */
export function hostCpuFlags(cpuinfo?: string): ReadonlySet<string> | undefined {
  let text = cpuinfo;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      return undefined;
    }
  }
  const line = /^flags\s*:(.*)$/m.exec(text);
  return line ? new Set(line[1].trim().split(/\s+/)) : undefined;
}

/** The required features the host lacks, in the order required. */
export function missingCpuFeatures(required: readonly string[], host: ReadonlySet<string>): string[] {
  return required.filter((f) => !host.has(f));
}
