// bench/cpu/report.ts: the CPU benchmark's table, its nincc/onnxruntime and nincc/PyTorch ratios.
import { describe, expect, it } from 'vitest';
import { lowerQuartile, reportLines, type Timed } from '../bench/cpu/report.js';

const row = (engine: Timed['engine'], what: Timed['what'], batch: number, seconds: number[], layout?: Timed['layout']): Timed => ({ model: 'm', what, batch, engine, flopsPerImage: 1e9, seconds, ...(layout ? { layout } : {}) });

describe('bench:cpu report', () => {
  const cases = [
    row('nincc', 'infer', 16, [0.1, 0.2, 0.3]),
    row('onnxruntime', 'infer', 16, [0.3, 0.3, 0.3]),
    row('pytorch', 'infer', 16, [0.5, 0.5, 0.5], 'nchw'),
    row('pytorch', 'infer', 16, [0.4, 0.4, 0.4], 'channels_last'),
    row('nincc', 'train', 16, [1, 1, 1]),
    row('pytorch', 'train', 16, [1.5, 1.5, 1.5], 'nchw'),
    row('pytorch', 'train', 16, [3, 3, 3], 'channels_last'),
  ];
  const lines = reportLines(cases, { gflops: 100 }, true);
  const cells = (i: number) => lines[i].trim().split(/\s{2,}/);

  it('divides by the median, pairs interleaved rounds, and compares nincc with the faster PyTorch layout', () => {
    expect(cells(0).slice(-2)).toEqual(['nincc/ort', 'nincc/torch']);
    // nincc median 0.2 s, onnxruntime 0.3: 1.50; per round 3.00, 1.50, 1.00: median 1.50; PyTorch's faster layout is channels_last, 0.4 s.
    expect(cells(1)).toEqual(['m', 'infer', '16', 'nincc', '80.0', '53.3–160.0', '200.00', '80.0', '80.0', '1.50 (1.50)', '2.00 (cl)']);
    expect(cells(3)[3]).toBe('pytorch nchw');
    // Training: the faster layout is NCHW here (1.5 s).
    expect(cells(5).slice(-1)).toEqual(['1.50 (nchw)']);
    expect(lines).toHaveLength(cases.length + 1); // header and rows: every rate is within the peak
  });

  it('refuses % peak when a rate exceeds the probed peak (the probe ran slow), naming the row', () => {
    // nincc's inference at 0.2 s per 16 GFLOP is 80 GFLOP/s, the table's fastest: above a peak of 40, and named.
    const warned = reportLines(cases, { gflops: 40 }, true);
    expect(warned).toHaveLength(cases.length + 2);
    for (let i = 1; i <= cases.length; i++) expect(warned[i].trim().split(/\s{2,}/)[8]).toBe('—');
    expect(warned.at(-1)).toBe('% peak not printed: m infer batch 16, nincc ran 80.0 GFLOP/s, above the probed peak of 40: the FMA probe ran slow');
  });

  it('refuses % peak when the probe itself is doubtful, even though every rate is under it', () => {
    const refused = reportLines(cases, { gflops: 100, untrusted: 'the clock moved' }, true);
    expect(refused.slice(1, -1).every((l) => l.trim().split(/\s{2,}/)[8] === '—')).toBe(true);
    expect(refused.at(-1)).toBe('% peak not printed: the clock moved');
  });

  it('lowerQuartile takes the sorted rounds\' element a quarter of the way up, whatever their order', () => {
    expect(lowerQuartile([210, 150, 400, 160, 155, 300, 170, 165])).toBe(160); // sorted: 150 155 [160] 165 170 210 300 400
    expect(lowerQuartile([5, 1, 3])).toBe(1);
    expect(lowerQuartile([7])).toBe(7);
  });
});
