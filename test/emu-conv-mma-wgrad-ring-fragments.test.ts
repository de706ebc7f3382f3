// The k×k weight gradients' B fragments by ldmatrix straight from the cp.async ring of dY' (compiler/backends/cuda/
// conv-mma-wgrad-ring-fragments.ts, the ablation `wgradRingFragments`, on; A staged in the positions' order by
// conv-mma-wgrad-natural-staging.ts) against B staged from the ring into a B tile (the switch off). The new
// form sums in another order (A and B in the positions' own k order, the splits on the ring's 8-position chunks, the bias
// gradient as an MMA row of ones), so it cannot be bitwise the old: on emu, every gradient but the 3×3's weight and bias
// gradients is bitwise the old build's, those two agree with it to fp32 summation error, and a second step of the new
// build is bitwise its first (deterministic). The spec: a 3×3 of 16 → 128 channels on 8×8 planes behind a 1×1 (its dY'
// from the grad_rebuild pass), a batch of 3 on grids for 4. CI checks the choice and the compiled kernels (NIN's k11
// included; no build, a few s); the emu comparison runs with NINCC_TEST_FULL=1.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Compiled } from '../compiler/pipeline.js';
import { compileEmuVariant } from './reference/emu-variants.js';
import { expectReorderedVariants, fractionOfLargest } from './reference/same-variants.js';

const CLASSES = 3;
const SPEC = `model wgrad_ring_fragments {
  input 16x8x8
  conv(16, 16, 1, 1, 1, 1, 0, 0)  bn(16)  relu
  conv(16, 128, 3, 3, 1, 1, 1, 1)  bn(128)  relu
  conv(128, 32, 1, 1, 1, 1, 0, 0)  bn(32)  relu
  view(-1)  linear(2048, ${CLASSES})  logsoftmax
}`;
const WORDS = "B's fragments by ldmatrix from the ring's windows (no B tile)";
const ON = {} as const;
// Off, this 3×3 takes the tap-major halo, whose own B fragments from the ring (wgradTapsRingFragments) go too: a B tile, as before.
const OFF = { wgradRingFragments: false, wgradTapsRingFragments: false } as const;
/** The 3×3's parameters, whose gradients the new form computes in another order. */
const REORDERED = ['conv4.weight', 'conv4.bias'];

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/emu-conv-mma-wgrad-ring-fragments.test.ts: the emu builds and comparisons run with NINCC_TEST_FULL=1; CI checks the compiled kernels');

const kernel = (c: Compiled, name: string) => (c.cuda?.kernels ?? []).find((k) => k.name === name)!;
const bodies = (x: Compiled) => new Map((x.cuda?.kernels ?? []).map((k) => [k.name, k.body.join('\n')]));

describe('B from the ring (choice and compiled kernels, no build)', () => {
  it('the 3×3 weight gradient reads B by ldmatrix from the ring, stages A in position order, splits on 8-position chunks and sums its bias as an MMA row; off, as before, and only it changes', () => {
    const on = compileEmuVariant(SPEC, 'wgrad_ring_fragments.model', ON), off = compileEmuVariant(SPEC, 'wgrad_ring_fragments.model', OFF);
    const k4 = kernel(on, 'k4_conv_wgrad_fused');
    expect(k4.fused).toContain(WORDS);
    expect(k4.fused).toContain('bias gradient (fp32) as an MMA row of ones');
    const body = k4.body.join('\n');
    expect(body).toContain('nincc::ldmatrix<2>(frag_b[nt], &bring[(int(it % 4) * 128 + row) * 40 + chunk * 8]);');
    expect(body).toContain('ko = 4 * quarter + e;');
    expect(body).toContain('const int row = 16 * (warp / 4 + 2 * i) + lane / 2, quarter = (2 * (t / 32 % 4) + t % 2);');
    expect(body).toMatch(/const long long lo = total \* split \/ \d+ \/ 8 \* 8/);
    expect(body).toContain('// the bias row');
    expect(body).not.toContain('&bs[');
    const before = kernel(off, 'k4_conv_wgrad_fused');
    expect(before.fused).not.toContain(WORDS);
    expect(before.body.join('\n')).toContain('nincc::ldmatrix<2>(frag_b[nt], &bs[');
    const a = bodies(on), b = bodies(off);
    expect([...a].filter(([name, text]) => text !== b.get(name)).map(([name]) => name)).toEqual(['k4_conv_wgrad_fused']);
  });

  it("NIN: k11's 5×5 weight gradient takes it, no other (k21's 2,304 taps fill its 256-row tiles: no padding row for the bias)", () => {
    const nin = compileEmuVariant(readFileSync('models/nin.model', 'utf8'), 'nin.model', ON, 'bf16', 'h100');
    const taking = (nin.cuda?.kernels ?? []).filter((k) => k.fused?.includes(WORDS)).map((k) => k.name);
    expect(taking).toEqual(['k11_conv_wgrad_fused']);
    expect(kernel(nin, 'k11_conv_wgrad_fused').body.join('\n')).toContain('&bring[(int(it % 4) * 128 + row) * 40 + chunk * 8]');
  });
});

describe.runIf(FULL)('B from the ring on emu (NINCC_TEST_FULL=1)', () => {
  it('one step: every other gradient bitwise the old build\'s, the 3×3\'s weight and bias gradients within fp32 summation error of it, and a second step bitwise the first', async () => {
    // Both sum the same exact bf16 products in fp32 over at most 2·64 positions a split: a relative error of a few 2^-24
    // each of the tensor's largest magnitude; 2^-12 of it is far above that and far below a wrong pairing of A and B.
    const bound = fractionOfLargest(2 ** -12);
    await expectReorderedVariants({ spec: SPEC, file: 'wgrad_ring_fragments.model', input: [16, 8, 8], classes: CLASSES, on: ON, off: OFF, reordered: REORDERED, bound }, 521);
  }, 900_000);
});
