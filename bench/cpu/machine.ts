// What the CPU benchmark runs on: model name, cores, ISA and clock from /proc/cpuinfo, and the measured
// fp32 FMA rate of bench/cpu/fma-peak.cc (built with the kernel library's own vector flags), from which
// the FLOP/cycle assumption and the peak that "% of peak" divides by are derived.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuFlags } from '../../compiler/backends/cpu/toolchain.js';
import { packageRoot } from '../../compiler/package-root.js';

export interface Machine {
  readonly model: string;
  readonly cores: number; // what nincc's OpenMP team and onnxruntime's intra-op pool both get
  readonly hypervisor: boolean;
  readonly isa: 'avx512' | 'avx2' | 'portable';
  readonly nominalGHz: number; // cpuinfo's "cpu MHz" (a VM reports the TSC's nominal rate)
  readonly probe: readonly { threads: number; gflops: number }[]; // measured FMA rate per thread count
  readonly flopsPerCycle: number; // per core: FMA units × lanes × 2
  readonly fmaUnits: number;
  readonly effectiveGHz: number; // the clock the single-thread probe implies at flopsPerCycle
  readonly peakGflops: number; // cores × single-thread probe rate: the denominator of "% of peak"
}

function cpuinfo(): string {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}

/** Runs the FMA probe; undefined when it cannot be built (no g++, no AVX2). */
function fmaProbe(threads: number): { threads: number; gflops: number }[] | undefined {
  const flags = cpuFlags();
  if (flags.length === 0) return undefined;
  const exe = join(mkdtempSync(join(tmpdir(), 'nincc-fma-')), 'fma-peak');
  const cc = spawnSync('g++', ['-O2', '-fopenmp', ...flags, join(packageRoot(), 'bench/cpu/fma-peak.cc'), '-o', exe], { encoding: 'utf8' });
  if (cc.status !== 0) return undefined;
  const run = spawnSync(exe, [String(threads)], { encoding: 'utf8' });
  if (run.status !== 0) return undefined;
  return run.stdout.trim().split('\n').map((l) => JSON.parse(l) as { threads: number; gflops: number });
}

export function describeMachine(): Machine {
  const info = cpuinfo();
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(info)?.[1]?.trim();
  const flags = new Set((field('flags') ?? '').split(/\s+/));
  const isa = flags.has('avx512f') ? 'avx512' : flags.has('avx2') && flags.has('fma') ? 'avx2' : 'portable';
  const cores = availableParallelism();
  const nominalGHz = Number(field('cpu MHz') ?? 0) / 1000;
  const lanes = isa === 'avx512' ? 16 : isa === 'avx2' ? 8 : 4;
  const probe = fmaProbe(cores) ?? [];
  const single = probe.find((p) => p.threads === 1)?.gflops ?? 0;
  // One FMA unit at the nominal clock would give lanes × 2 × GHz; a rate well over that (allowing
  // turbo up to 1.6× nominal) means two units. The probe decides; the clock follows from it.
  const oneUnit = lanes * 2 * nominalGHz;
  const fmaUnits = nominalGHz > 0 && single > 1.6 * oneUnit ? 2 : 1;
  const flopsPerCycle = fmaUnits * lanes * 2;
  return {
    model: field('model name') ?? 'unknown CPU',
    cores,
    hypervisor: flags.has('hypervisor'),
    isa,
    nominalGHz,
    probe,
    flopsPerCycle,
    fmaUnits,
    effectiveGHz: single / flopsPerCycle,
    peakGflops: single > 0 ? single * cores : flopsPerCycle * nominalGHz * cores,
  };
}

export function machineLines(m: Machine): string[] {
  const probe = m.probe.map((p) => `${p.threads} thread${p.threads > 1 ? 's' : ''} ${p.gflops.toFixed(0)}`).join(', ');
  return [
    `machine: ${m.model}${m.hypervisor ? ' (VM)' : ''}, ${m.cores} cores, ${m.isa}, cpuinfo clock ${m.nominalGHz.toFixed(2)} GHz`,
    `FMA probe (bench/cpu/fma-peak.cc, GFLOP/s): ${probe || 'not run'}`,
    `peak assumption: ${m.fmaUnits} FMA unit${m.fmaUnits > 1 ? 's' : ''} × ${m.flopsPerCycle / m.fmaUnits / 2} lanes × 2 = ${m.flopsPerCycle} FLOP/cycle/core; ` +
      `the 1-thread probe implies ${m.effectiveGHz.toFixed(2)} GHz, so peak = ${m.cores} × ${(m.peakGflops / m.cores).toFixed(0)} = ${m.peakGflops.toFixed(0)} GFLOP/s ` +
      `(at the ${m.nominalGHz.toFixed(2)} GHz nominal clock it would be ${(m.cores * m.flopsPerCycle * m.nominalGHz).toFixed(0)})`,
  ];
}
