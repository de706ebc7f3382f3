// The CPU benchmark's table: per case the median images/s, min–max, ms per batch, GFLOP/s, % of peak,
// and for nincc the ratio to onnxruntime (inference) and to PyTorch's faster layout (inference and training).
import type { Peak } from './fma-probe-trust.js';

export interface Timed {
  readonly model: string;
  readonly what: 'infer' | 'train';
  readonly batch: number;
  readonly engine: 'nincc' | 'onnxruntime' | 'pytorch';
  readonly layout?: 'nchw' | 'channels_last'; // PyTorch's memory format
  readonly flopsPerImage: number; // forward
  readonly seconds: number[];
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * The value a quarter of the way up (the sorted xs' element at floor(n/4)): on a loaded machine, where a round's
 * median moves with what else ran in it, the rounds nearest an idle machine's without resting on the single luckiest.
 */
export const lowerQuartile = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 4)];

/** The table; `paired`: the runs were interleaved round by round, so per-round ratios mean something. */
export function reportLines(cases: readonly Timed[], peak: Peak, paired: boolean): string[] {
  let fastest = { gflops: 0, what: '' }; // the highest rate of the table, set against the probed peak below
  const rates: number[] = []; // GFLOP/s per row, % peak filled in once the whole table is known
  const rows: string[][] = [['model', 'case', 'batch', 'engine', 'images/s', 'min–max', 'ms/batch', 'GFLOP/s', '% peak', 'nincc/ort', 'nincc/torch']];
  for (const c of cases) {
    const t = median(c.seconds);
    const ips = c.batch / t;
    const gflops = (ips * c.flopsPerImage * (c.what === 'train' ? 3 : 1)) / 1e9;
    let ratio = '';
    if (c.engine === 'nincc' && c.what === 'infer') {
      const o = cases.find((d) => d.model === c.model && d.engine === 'onnxruntime' && d.batch === c.batch && d.what === 'infer');
      if (o) {
        ratio = (median(o.seconds) / t).toFixed(2);
        if (paired) ratio += ` (${median(c.seconds.map((s, i) => o.seconds[i] / s)).toFixed(2)})`;
      }
    }
    let torchRatio = '';
    if (c.engine === 'nincc') {
      const theirs = cases.filter((d) => d.model === c.model && d.engine === 'pytorch' && d.batch === c.batch && d.what === c.what);
      const best = theirs.sort((a, b) => median(a.seconds) - median(b.seconds))[0];
      if (best) torchRatio = `${(median(best.seconds) / t).toFixed(2)} (${best.layout === 'channels_last' ? 'cl' : 'nchw'})`;
    }
    const spread = `${(c.batch / Math.max(...c.seconds)).toFixed(1)}–${(c.batch / Math.min(...c.seconds)).toFixed(1)}`;
    if (gflops > fastest.gflops) fastest = { gflops, what: `${c.model} ${c.what} batch ${c.batch}, ${c.engine}` };
    const engine = c.layout ? `${c.engine} ${c.layout === 'channels_last' ? 'cl' : 'nchw'}` : c.engine;
    rows.push([c.model, c.what === 'train' ? 'train step' : 'infer', String(c.batch), engine, ips.toFixed(1), spread, (t * 1000).toFixed(2), gflops.toFixed(1), '', ratio, torchRatio]);
    rates.push(gflops);
  }
  // No engine can beat the FMA peak, so a rate above it means the probe itself ran slow (another process, or
  // the VM's clock at that moment: 104 and 177 GFLOP/s a minute apart on one idle 2-core VM).
  const untrusted =
    peak.untrusted ?? (fastest.gflops > peak.gflops ? `${fastest.what} ran ${fastest.gflops.toFixed(1)} GFLOP/s, above the probed peak of ${peak.gflops.toFixed(0)}: the FMA probe ran slow` : undefined);
  rates.forEach((g, i) => (rows[i + 1][8] = untrusted ? '—' : ((100 * g) / peak.gflops).toFixed(1)));
  const width = rows[0].map((_, j) => Math.max(...rows.map((r) => r[j].length)));
  const lines = rows.map((r) => r.map((v, j) => (j < 4 ? v.padEnd(width[j]) : v.padStart(width[j]))).join('  '));
  if (untrusted) lines.push(`% peak not printed: ${untrusted}`);
  return lines;
}
