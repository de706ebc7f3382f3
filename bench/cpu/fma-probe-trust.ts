// Reads bench/cpu/fma-peak.cc's rows into the machine's FMA peak, and decides whether "% of peak" can be
// trusted: the probe is a lower bound (another process, or the VM's clock at that moment, only slows it),
// so each check below looks for a sign that it ran below the hardware's rate.
export interface ProbeRow {
  readonly kind: 'fma' | 'clock';
  readonly isa: string; // avx512 | avx2 (x86 for the clock)
  readonly lanes: number;
  readonly chains: number;
  readonly threads: number;
  readonly trials: number;
  readonly best: number; // GFLOP/s (fma: all threads together) or GHz (clock: per core)
  readonly median: number;
  readonly share: number; // of the best trial's wall time, the least any of its threads was on a CPU
}

export interface ProbeSummary {
  readonly isa: string; // the width whose rate is the peak
  readonly lanes: number;
  readonly singleGflops: number; // best 1-thread rate over widths and chain counts
  readonly allGflops: number; // the same with every thread
  readonly threads: number; // how many "every thread" was
  readonly clockGHz: number; // 1-thread clock from the add chain, per second on a CPU
  readonly flopsPerCycle: number; // the 1-thread FMA rate ÷ clockGHz, both per second on a CPU: measured, not assumed
  readonly fmaUnits: number; // flopsPerCycle ÷ (lanes × 2), rounded to 1 or 2
  readonly problems: readonly string[]; // why this probe's peak may be low; empty: trusted
}

/** A probe run's rows → its peak and what makes it doubtful; undefined when it printed no FMA row. */
export function summarizeProbe(rows: readonly ProbeRow[]): ProbeSummary | undefined {
  const fma = rows.filter((r) => r.kind === 'fma');
  if (fma.length === 0) return undefined;
  const threads = Math.max(...fma.map((r) => r.threads));
  const fastest = (rs: readonly ProbeRow[]) => rs.reduce((a, b) => (b.best > a.best ? b : a));
  const single = fastest(fma.filter((r) => r.threads === 1));
  const all = fastest(fma.filter((r) => r.threads === threads));
  const clockRow = rows.find((r) => r.kind === 'clock' && r.threads === 1);
  // Per second on a CPU (best ÷ share): both sides of the ratio below then count only the time the
  // thread ran, so FLOP/cycle holds even where another process took turns on the core.
  const onCpu = (r: ProbeRow) => r.best / Math.max(r.share, 1e-3);
  const clockGHz = clockRow ? onCpu(clockRow) : 0;
  const flopsPerCycle = clockGHz > 0 ? onCpu(single) / clockGHz : 0;
  // x86 cores have one or two vector FMA units; more would mean the clock run was the slowed one.
  const fmaUnits = Math.min(2, Math.max(1, Math.round(flopsPerCycle / (single.lanes * 2))));
  const problems: string[] = [];
  // A thread off its CPU part of the time (another process had the core) ran slow for a reason the
  // other checks cannot see when it slows every measurement alike: the probe's threads must have had
  // their cores for 95% of the best trials.
  const shared = [clockRow, single, all].filter((r): r is ProbeRow => r !== undefined && r.share < 0.95);
  if (shared.length)
    problems.push(`the probe's threads were on a CPU for only ${Math.round(100 * Math.min(...shared.map((r) => r.share)))}% of a best trial: the cores were shared`);
  // FMA rate and clock were timed a moment apart on one pinned thread: their ratio is the FLOP per cycle,
  // and a whole number of FMA units gives it exactly. Off by more than 10%, the clock moved between them.
  const expected = fmaUnits * single.lanes * 2;
  if (clockGHz <= 0) problems.push('the probe measured no clock');
  else if (Math.abs(flopsPerCycle - expected) > 0.1 * expected)
    problems.push(`1 thread: ${onCpu(single).toFixed(0)} GFLOP/s at ${clockGHz.toFixed(2)} GHz (per second on a CPU) is ${flopsPerCycle.toFixed(1)} FLOP/cycle, not ${fmaUnits} unit${fmaUnits > 1 ? 's' : ''} × ${single.lanes} lanes × 2 = ${expected}`);
  // FMAs on separate cores do not share anything, so every thread should give threads × the 1-thread rate.
  if (threads > 1 && all.best < 0.9 * threads * single.best)
    problems.push(`${threads} threads reached ${all.best.toFixed(0)} GFLOP/s, under 90% of ${threads} × ${single.best.toFixed(0)}: the cores were not all the probe's`);
  return { isa: all.isa, lanes: all.lanes, singleGflops: single.best, allGflops: all.best, threads, clockGHz, flopsPerCycle, fmaUnits, problems };
}

export interface Peak {
  readonly gflops: number; // the denominator of "% peak"
  readonly untrusted?: string; // why "% peak" is not printed; absent: it is
}

/**
 * The peak from the probes run before and after the timed work (`after` may be missing): the higher
 * all-thread rate. Trusted only when each probe passed its own checks and the two agree within 10%
 * (the clock did not move during the work).
 */
export function peakOf(before: ProbeSummary | undefined, after?: ProbeSummary): Peak {
  if (!before) return { gflops: 0, untrusted: 'the FMA probe did not run' };
  const probes = after ? [before, after] : [before];
  const gflops = Math.max(...probes.map((p) => p.allGflops));
  const reasons = probes.flatMap((p, i) => p.problems.map((why) => `${probes.length > 1 ? (i ? 'after: ' : 'before: ') : ''}${why}`));
  if (after && Math.abs(after.allGflops - before.allGflops) > 0.1 * gflops)
    reasons.push(`the probe read ${before.allGflops.toFixed(0)} GFLOP/s before the runs and ${after.allGflops.toFixed(0)} after: the clock moved`);
  return reasons.length ? { gflops, untrusted: reasons.join('; ') } : { gflops };
}

/** The probe's rows as bench/cpu/fma-peak.cc prints them (one JSON object a line). */
export function parseProbe(stdout: string): ProbeRow[] {
  return stdout
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as ProbeRow);
}
