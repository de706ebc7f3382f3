// The stem weight gradient's row tiles of one channel each (switch `stemWgradChannelTiles`,
// compiler/backends/cuda/conv-mma-stem-wgrad-layout.ts channelTilesFit): NIN's 121 taps a channel padded to 128, so a
// block's halo is one plane, not the two a tile across a channel's end reads, and has room for a longer staging
// (`stemWgradLongStagings`: 16 slices); opted into, its partials go through the idle halo into runs along dW
// (`stemWgradBandStores`, conv-mma-stem-wgrad-store.ts). Every dW element sums the same products in the same slices and k order (only its GEMM
// row moves), so the builds must agree bitwise. CI checks the compiled kernels (NIN's stem on an odd plane, and NIN's own at batch 128); NINCC_TEST_FULL=1
// runs one step's gradients, three SGD steps and inference on emu against the switch-off build, with the h100's splits.
import { describe, expect, it } from 'vitest';
import { compileModel, compileSpec, type Compiled } from '../compiler/pipeline.js';
import { compileEmuVariant } from './reference/emu-variants.js';
import { expectSameVariants } from './reference/same-variants.js';
import { channelTilesFit } from '../compiler/backends/cuda/conv-mma-stem-wgrad-layout.js';

const FULL = process.env.NINCC_TEST_FULL === '1';
const CLASSES = 3;
/** NIN's stem (3→96 11×11/4, pad 5: its 128×96 tile of 2×2 warps) on an odd plane, then a BN, a ReLU and a 3×3. */
const SPEC = `model chantiles { input 3x37x29  conv(3, 96, 11, 11, 4, 4, 5, 5)  bn(96)  relu  conv(96, 6, 3, 3, 1, 1, 1, 1)  view(-1)  linear(${6 * 10 * 8}, ${CLASSES})  logsoftmax }`;

const stemWgrad = (c: Compiled) => (c.cuda?.kernels ?? []).find((k) => k.name === 'k1_conv_wgrad_fused');

describe('the stem wgrad\'s row tiles of one channel (compiled, no build)', () => {
  it('NIN\'s 11×11 fits (121 taps in 128 rows, 3 tiles either way); a 7×7 (3 tiles for 2) or a 12×12 (144 taps > 128) does not', () => {
    const stem = { C: 3, R: 11, S: 11 };
    expect(channelTilesFit(stem as never, 128)).toBe(true);
    expect(channelTilesFit({ ...stem, R: 7, S: 7 } as never, 128)).toBe(false);
    expect(channelTilesFit({ ...stem, R: 12, S: 12 } as never, 128)).toBe(false);
  });

  it('the stem\'s weight gradient stages one plane a block and maps row m to channel m / 128\'s tap m % 128; stemWgradChannelTiles: false keeps the tiles across channels', () => {
    const on = stemWgrad(compileEmuVariant(SPEC, 'chantiles.model', {}, 'bf16', 'h100')), off = stemWgrad(compileEmuVariant(SPEC, 'chantiles.model', { stemWgradChannelTiles: false }, 'bf16', 'h100'));
    const onText = on?.body.join('\n') ?? '', offText = off?.body.join('\n') ?? '';
    expect(on?.tile).toMatch(/M = 363 \(C·R·S\).*row tiles of one channel each; input halo 1 planes/);
    expect(onText).toContain('const int ch0 = int(blockIdx.x);');
    expect(onText).toContain('const int tap = rs / 11 * ');
    expect(onText).toContain('nincc::st(&wpart[((long long)split * 96 + col) * 363 + int(m) / 128 * 121 + rs], d);');
    expect(on?.launch.grid[0]).toBe(3);
    expect(off?.tile).toMatch(/M = 363 \(C·R·S\).* splits; input halo 2 planes/);
    expect(offText).toContain('const int ch0 = int(m0) / 121;');
    expect(offText).not.toContain('row tiles of one channel');
  });

  it('NIN\'s own stem at batch 128 for an H100: 3 row tiles of one channel, one plane of 512 positions a staging (27,424 B)', () => {
    const nin = `model nin_stem { input 3x224x224  conv(3, 96, 11, 11, 4, 4, 5, 5)  bn(96)  relu  maxpool(3, 3, 2, 2, 1, 1)  avgpool(28, 28, 1, 1)  conv(96, 3000, 1, 1, 1, 1, 0, 0)  view(-1)  linear(3000, ${CLASSES})  logsoftmax }`;
    const r = compileSpec(nin, 'nin_stem.model', { device: 'emu' });
    const k = stemWgrad(compileModel(r.model!, { target: 'emu', maxBatch: 128, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision: 'bf16', ablations: {}, gpu: 'h100' }));
    expect(k?.tile).toMatch(/128×96×32 tile, 4 warps \(2×2\) of 64×48, M = 363 \(C·R·S\).*; row tiles of one channel each; input halo 1 planes at a pitch ≤ 13496, 512 positions a staging, bf16 in shared \(27424 B\)/);
    expect(k?.launch.grid[0]).toBe(3);
  });

  it('with them, a staging of 16 slices, and opted into, the partials through the halo\'s band; each switch alone takes only its part', () => {
    const body = (ablations: object) => stemWgrad(compileEmuVariant(SPEC, 'chantiles.model', ablations, 'bf16', 'h100'));
    const on = body({ stemWgradBandStores: true }), short = body({ stemWgradBandStores: true, stemWgradLongStagings: false }), plain = body({});
    expect(on?.tile).toMatch(/input halo 1 planes at a pitch ≤ \d+, 512 positions a staging/);
    expect(short?.tile).toMatch(/input halo 1 planes at a pitch ≤ \d+, 256 positions a staging/);
    const band = 'if (col < 96) nincc::st(&wpart[((long long)split * 96 + col) * 363 + int(m0) / 128 * 121 + rs], v);';
    expect(on?.body.join('\n')).toContain(band);
    expect(on?.body.join('\n')).not.toContain('+ int(m) / 128 * 121 + rs], d);');
    expect(plain?.body.join('\n')).not.toContain(band);
    expect(plain?.body.join('\n')).toContain('nincc::st(&wpart[((long long)split * 96 + col) * 363 + int(m) / 128 * 121 + rs], d);');
    expect(plain?.tile).toBe(on?.tile);
  });
});

if (!FULL) console.warn('test/emu-stem-wgrad-channel-tiles.test.ts: the bitwise comparison on emu runs with NINCC_TEST_FULL=1; CI checks the compiled kernels');
describe.runIf(FULL)('the stem wgrad\'s row tiles of one channel on emu (NINCC_TEST_FULL=1)', () => {
  it('NIN\'s stem on 3×37×29 with the h100\'s splits, the band stores opted into: one step\'s gradients, three SGD steps and inference bitwise the tiles across channels', async () => {
    await expectSameVariants({ spec: SPEC, file: 'chantiles.model', input: [3, 37, 29], classes: CLASSES, on: { stemWgradBandStores: true }, off: { stemWgradChannelTiles: false }, live: 'conv1.weight', gpu: 'h100' }, 131);
  }, 900_000);
});
