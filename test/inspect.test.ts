// `nincc inspect --json`: NIN's shapes, parameter and MAC totals against a count done by hand.
import { describe, expect, it } from 'vitest';
import { nincc } from './cli-run.js';

interface Row { index: number; torch: string; output: number[]; params: number; macs: number; line: number }

describe('nincc inspect --json models/nin.model', () => {
  const r = nincc(['inspect', '--json', 'models/nin.model']);
  const j = JSON.parse(r.stdout) as { layers: Row[]; totals: { params: number; macs: number } };
  const at = (i: number) => j.layers[i - 1];

  it('has the shapes of Torch7 NIN at 224x224', () => {
    expect(r.code).toBe(0);
    expect(at(9).output).toEqual([96, 56, 56]); // after the first block
    expect(at(10).output).toEqual([96, 28, 28]); // pools: 28, 14, 7
    expect(at(20).output).toEqual([256, 14, 14]);
    expect(at(30).output).toEqual([384, 7, 7]);
    expect(at(40).output).toEqual([1024, 1, 1]); // average pool
    expect(at(41).output).toEqual([1024]);
    expect(at(43).output).toEqual([1000]);
    expect(at(1)).toMatchObject({ torch: 'nn.SpatialConvolution(3 -> 96, 11x11, 4,4, 5,5)', line: 10 });
  });

  it('totals match a hand count', () => {
    // MACs per image, block by block (k·k·Cin·Cout·P·Q, then two 1x1 convs Cout²·P·Q each):
    const block1 = 96 * 3 * 11 * 11 * 56 * 56 + 2 * 96 * 96 * 56 * 56; //   109,283,328 + 57,802,752
    const block2 = 256 * 96 * 5 * 5 * 28 * 28 + 2 * 256 * 256 * 28 * 28; // 481,689,600 + 102,760,448
    const block3 = 384 * 256 * 3 * 3 * 14 * 14 + 2 * 384 * 384 * 14 * 14; // 173,408,256 + 57,802,752
    const block4 = 1024 * 384 * 3 * 3 * 7 * 7 + 2 * 1024 * 1024 * 7 * 7; // 173,408,256 + 102,760,448
    const classifier = 1024 * 1000;
    expect(j.totals.macs).toBe(block1 + block2 + block3 + block4 + classifier);
    expect(j.totals.macs).toBe(1_259_939_840); // ≈ 1.26 GMAC, docs/design.md §8
    // Parameters: conv weights + biases, BN γ and β (running stats are not parameters), linear.
    const conv = (i: number, o: number, k: number) => o * i * k * k + o;
    const bn = (c: number) => 2 * c;
    const params =
      conv(3, 96, 11) + 2 * conv(96, 96, 1) + 3 * bn(96) +
      conv(96, 256, 5) + 2 * conv(256, 256, 1) + 3 * bn(256) +
      conv(256, 384, 3) + 2 * conv(384, 384, 1) + 3 * bn(384) +
      conv(384, 1024, 3) + 2 * conv(1024, 1024, 1) + 3 * bn(1024) +
      1024 * 1000 + 1000;
    expect(j.totals.params).toBe(params);
    expect(j.totals.params).toBe(8_655_336);
  });
});

describe('nincc check', () => {
  it('accepts the shipped models', () => {
    for (const m of ['models/nin.model', 'models/nin-nobn.model', 'models/nin-fashion.model']) {
      const r = nincc(['check', m]);
      expect(r.code, r.stderr).toBe(0);
    }
  });

  it('exits 1 with rendered diagnostics, and --json prints them as data', () => {
    const bad = nincc(['check', 'test/specs/E010-unknown-layer.model']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/error E010: unknown layer/);
    const json = nincc(['check', '--json', 'test/specs/E010-unknown-layer.model']);
    expect(json.code).toBe(1);
    const ds = JSON.parse(json.stdout) as { code: string; span: { start: { line: number } } }[];
    expect(ds[0].code).toBe('E010');
  });

  it('reports a missing file and unknown options as usage errors', () => {
    expect(nincc(['check', 'nope.model'])).toMatchObject({ code: 2, stderr: 'nincc check: nope.model: no such file\n' });
    expect(nincc(['check', '--bogus', 'models/nin.model']).code).toBe(2);
    expect(nincc(['frobnicate']).code).toBe(2);
  });
});
