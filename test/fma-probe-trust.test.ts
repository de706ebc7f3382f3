// bench/cpu/fma-probe-trust.ts: the FMA probe's rows → the peak, and the checks that refuse a probe that ran slow.
import { describe, expect, it } from 'vitest';
import { parseProbe, peakOf, type ProbeRow, summarizeProbe } from '../bench/cpu/fma-probe-trust.js';

const fma = (isa: string, lanes: number, chains: number, threads: number, best: number): ProbeRow => ({ kind: 'fma', isa, lanes, chains, threads, trials: 7, best, median: best * 0.98, share: 1 });
const clock = (threads: number, ghz: number): ProbeRow => ({ kind: 'clock', isa: 'x86', lanes: 1, chains: 1, threads, trials: 7, best: ghz, median: ghz, share: 1 });

// An idle 2-core AVX-512 machine with 2 FMA units at 3.0 GHz: 64 FLOP/cycle, 192 GFLOP/s a core.
const idle = [clock(1, 3.0), fma('avx512', 16, 8, 1, 150), fma('avx512', 16, 16, 1, 192), fma('avx2', 8, 16, 1, 96), clock(2, 3.0), fma('avx512', 16, 16, 2, 380), fma('avx2', 8, 16, 2, 190)];

describe('FMA probe trust', () => {
  it('takes the best width and chain count, and measures FLOP/cycle and the units from the clock', () => {
    const p = summarizeProbe(idle)!;
    expect(p).toMatchObject({ isa: 'avx512', lanes: 16, singleGflops: 192, allGflops: 380, threads: 2, clockGHz: 3, flopsPerCycle: 64, fmaUnits: 2 });
    expect(p.problems).toEqual([]);
    expect(peakOf(p, summarizeProbe(idle))).toEqual({ gflops: 380 });
  });

  it('doubts a 1-thread rate that does not fit a whole number of units at the clock measured beside it', () => {
    // 150 GFLOP/s at 3 GHz is 50 FLOP/cycle: neither 1 unit (32) nor 2 (64) — the FMA run was slowed.
    const slowed = idle.map((r) => (r.kind === 'fma' && r.threads === 1 && r.isa === 'avx512' ? { ...r, best: 150 } : r));
    const p = summarizeProbe(slowed)!;
    expect(p.problems).toEqual(['1 thread: 150 GFLOP/s at 3.00 GHz (per second on a CPU) is 50.0 FLOP/cycle, not 2 units × 16 lanes × 2 = 64']);
    // And a slowed clock run: 192 GFLOP/s at 1.5 GHz would be 128 FLOP/cycle, 4 units, which no x86 core has.
    const slowClock = summarizeProbe(idle.map((r) => (r.kind === 'clock' ? { ...r, best: 1.5 } : r)))!;
    expect(slowClock.problems).toEqual(['1 thread: 192 GFLOP/s at 1.50 GHz (per second on a CPU) is 128.0 FLOP/cycle, not 2 units × 16 lanes × 2 = 64']);
  });

  it('doubts an all-thread rate under 90% of threads × the 1-thread rate (another process had a core)', () => {
    const shared = idle.map((r) => (r.kind === 'fma' && r.threads === 2 ? { ...r, best: r.best / 1.6 } : r));
    expect(summarizeProbe(shared)!.problems).toEqual(['2 threads reached 238 GFLOP/s, under 90% of 2 × 192: the cores were not all the probe\'s']);
    expect(peakOf(summarizeProbe(shared)).untrusted).toMatch(/^2 threads reached 238/);
  });

  it('doubts a probe whose threads were off their CPUs in its best trials, though every rate scaled alike', () => {
    // Another process on each core: the clock, one thread and both threads all ran 60% of the time, so
    // FLOP/cycle and the 2-thread scaling look right, and only the share shows it.
    const halved = idle.map((r) => ({ ...r, best: r.best * 0.6, share: 0.6 }));
    const p = summarizeProbe(halved)!;
    expect(p.problems).toEqual(["the probe's threads were on a CPU for only 60% of a best trial: the cores were shared"]);
    // Per second on a CPU, the clock and FLOP/cycle are still the hardware's.
    expect(p).toMatchObject({ clockGHz: 3, flopsPerCycle: 64, fmaUnits: 2 });
  });

  it('refuses the peak when the probes before and after the runs disagree by more than 10%, and takes the higher', () => {
    const slowerVm = idle.map((r) => ({ ...r, best: r.best * 0.85 }));
    const peak = peakOf(summarizeProbe(idle), summarizeProbe(slowerVm));
    expect(peak.gflops).toBe(380);
    expect(peak.untrusted).toBe('the probe read 380 GFLOP/s before the runs and 323 after: the clock moved');
    expect(peakOf(undefined)).toEqual({ gflops: 0, untrusted: 'the FMA probe did not run' });
  });

  it('reads the probe\'s JSON lines', () => {
    const out = '{"kind": "clock", "isa": "x86", "lanes": 1, "chains": 1, "threads": 1, "trials": 7, "best": 2.77, "median": 2.63, "share": 1.000}\nnoise\n';
    expect(parseProbe(out)).toEqual([clock(1, 2.77)].map((r) => ({ ...r, median: 2.63 })));
  });
});
