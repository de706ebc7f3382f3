// What the CPU benchmark runs on: model name, cores, ISA and clock from /proc/cpuinfo, and the FMA probe
// (bench/cpu/fma-peak.cc, built with the kernel library's own vector flags; read by ./fma-probe-trust.ts),
// which measures the fp32 FMA rate, the core clock and from them the FLOP per cycle that "% of peak" rests on.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuFlags } from '../../compiler/backends/cpu/toolchain.js';
import { packageRoot } from '../../compiler/package-root.js';
import { parseProbe, type ProbeRow, type ProbeSummary, summarizeProbe } from './fma-probe-trust.js';

export interface Machine {
  readonly model: string;
  readonly cores: number; // what nincc's OpenMP team and onnxruntime's intra-op pool both get
  readonly hypervisor: boolean;
  readonly isa: 'avx512' | 'avx2' | 'portable';
  readonly nominalGHz: number; // cpuinfo's "cpu MHz" (a VM reports the TSC's nominal rate)
  readonly probe?: ProbeSummary; // absent when the probe cannot be built (no g++, no AVX2)
  readonly probeRows: readonly ProbeRow[];
}

function cpuinfo(): string {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}

let probeExe: string | undefined;

/** Runs the FMA probe on 1 and `threads` pinned threads; [] when it cannot be built or run. */
export function runFmaProbe(threads: number): ProbeRow[] {
  const flags = cpuFlags();
  if (flags.length === 0) return [];
  if (!probeExe) {
    const exe = join(mkdtempSync(join(tmpdir(), 'nincc-fma-')), 'fma-peak');
    const cc = spawnSync('g++', ['-O2', '-pthread', ...flags, join(packageRoot(), 'bench/cpu/fma-peak.cc'), '-o', exe], { encoding: 'utf8' });
    if (cc.status !== 0) return [];
    probeExe = exe;
  }
  const run = spawnSync(probeExe, [String(threads), '7'], { encoding: 'utf8' });
  return run.status === 0 ? parseProbe(run.stdout) : [];
}

export function describeMachine(): Machine {
  const info = cpuinfo();
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(info)?.[1]?.trim();
  const flags = new Set((field('flags') ?? '').split(/\s+/));
  const cores = availableParallelism();
  const probeRows = runFmaProbe(cores);
  return {
    model: field('model name') ?? 'unknown CPU',
    cores,
    hypervisor: flags.has('hypervisor'),
    isa: flags.has('avx512f') ? 'avx512' : flags.has('avx2') && flags.has('fma') ? 'avx2' : 'portable',
    nominalGHz: Number(field('cpu MHz') ?? 0) / 1000,
    probe: summarizeProbe(probeRows),
    probeRows,
  };
}

/** One line per probe: rates per width and thread count (best over chain counts), clock, FLOP/cycle, doubts. */
export function probeLines(rows: readonly ProbeRow[], p: ProbeSummary | undefined, when: string): string[] {
  if (!p) return [`FMA probe ${when}: not run`];
  const rates = [...new Set(rows.filter((r) => r.kind === 'fma').map((r) => `${r.isa} ${r.threads}`))].map((key) => {
    const [isa, t] = key.split(' ');
    const best = Math.max(...rows.filter((r) => r.kind === 'fma' && r.isa === isa && r.threads === Number(t)).map((r) => r.best));
    return `${isa} ${t} thread${t === '1' ? '' : 's'} ${best.toFixed(0)}`;
  });
  return [
    `FMA probe ${when} (bench/cpu/fma-peak.cc, pinned threads, best of 7 trials, GFLOP/s): ${rates.join(', ')}`,
    `  1-thread clock ${p.clockGHz.toFixed(2)} GHz (dependent adds, per second on a CPU) → ${p.flopsPerCycle.toFixed(1)} FLOP/cycle = ${p.fmaUnits} FMA unit${p.fmaUnits > 1 ? 's' : ''} × ${p.lanes} lanes × 2; ` +
      `the cores could give ${p.threads} × ${p.fmaUnits * p.lanes * 2} × ${p.clockGHz.toFixed(2)} = ${(p.threads * p.fmaUnits * p.lanes * 2 * p.clockGHz).toFixed(0)} GFLOP/s at that clock; ` +
      `peak = ${p.threads} threads' ${p.allGflops.toFixed(0)} GFLOP/s measured${p.problems.length ? `; doubtful: ${p.problems.join('; ')}` : ''}`,
  ];
}

export function machineLines(m: Machine): string[] {
  return [
    `machine: ${m.model}${m.hypervisor ? ' (VM)' : ''}, ${m.cores} cores, ${m.isa}, cpuinfo clock ${m.nominalGHz.toFixed(2)} GHz`,
    ...probeLines(m.probeRows, m.probe, 'before the runs'),
  ];
}
