// The CPU fast paths as generated code: folded conv weights packed once at fold time (and the packed
// buffer's size cross-checked by a static_assert), conv inference reading them packed, and the
// NINCC_PROFILE build whose per-kernel timing table is written when the process exits.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildArtifact } from '../compiler/build.js';
import { packedConvWeightsSize } from '../compiler/lower-infer.js';
import { compileSpec } from '../compiler/pipeline.js';
import { nincc, root } from './cli-run.js';

const work = mkdtempSync(join(tmpdir(), 'nincc-perf-'));
const spec = join(root, 'models/nin-fashion.model');
const source = readFileSync(spec, 'utf8');

function build(dir: string): string {
  buildArtifact(compileSpec(source, spec).model!, source, { outDir: dir, target: 'cpu', maxBatch: 4 });
  return readFileSync(join(dir, 'kernels.cpu.cc'), 'utf8');
}

afterEach(() => {
  delete process.env.NINCC_PROFILE;
});

describe('generated CPU code', () => {
  it('packs each folded conv weight once, at fold time, and conv inference reads the packed panels', () => {
    const cc = build(join(work, 'plain'));
    // layer 11: conv(32, 64, 3x3) of the second block: 64 channels round up to 72 rows of 12.
    expect(packedConvWeightsSize(64, 32 * 9)).toBe(72 * 288);
    expect(cc).toContain(`static_assert(packed_conv_weights_size(64, 288) == ${72 * 288}, "packed weight buffer size");`);
    expect(cc).toMatch(/extern "C" void k11_fold_bn\(const NinccArgs\* a\) \{\n  fold_batchnorm\([^\n]*\n  static_assert[^\n]*\n  const Conv2dShape shape\{1, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1\};\n  pack_conv_weights\(shape, /);
    expect(cc).toMatch(/extern "C" void k11_conv_infer\(const NinccArgs\* a\) \{\n  const Conv2dShape shape\{a->n, 32, 14, 14, 64, 3, 3, 1, 1, 1, 1\};\n  conv2d_forward\(shape, arg<const float>\(a, 0\), PackedConvWeights\{arg<const float>\(a, 1\)\}, /);
    expect(cc.match(/PackedConvWeights\{/g)).toHaveLength(9);
    expect(cc).not.toContain('ScopedKernelTimer');
  });

  it('NINCC_PROFILE at build time times every kernel; the table is written when the process exits', () => {
    process.env.NINCC_PROFILE = '1';
    const dir = join(work, 'profiled');
    const cc = build(dir);
    expect(cc).toMatch(/extern "C" void k1_conv_infer\(const NinccArgs\* a\) \{\n  const ScopedKernelTimer timer\("k1_conv_infer"\);\n/);
    const table = join(work, 'profile.txt');
    // At run time NINCC_PROFILE says where the table goes. The kernel library stays loaded until the
    // process exits (its thread-local scratch makes it non-unloadable), so run one in a child.
    const r = nincc(['bench', dir, '--runs', '2'], { env: { NINCC_PROFILE: table } });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(table)).toBe(true);
    const text = readFileSync(table, 'utf8');
    expect(text).toMatch(/^nincc profile: [\d.]+ s in \d+ kernels\n/);
    expect(text).toMatch(/\nk1_conv_infer\s+3\s/); // warm-up and two timed runs at batch 1
    expect(text).toMatch(/\nk1_fold_bn\s+1\s/);
    expect(text).toMatch(/\nk1_conv_bwd_weight\s+3\s/);
  });
});
