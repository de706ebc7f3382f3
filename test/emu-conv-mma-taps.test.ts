// The tap-major halo of the stride-1 k×k bf16 training forwards and data gradients
// (compiler/backends/cuda/conv-mma-taps-halo.ts): A's fragments by ldmatrix from a channels-innermost halo,
// k tap-major per group of 32 channels, B from a bf16 weight copy in that order. The summation order is
// not the channel-major build's, so the check is against float64 with the per-element bf16 bounds of
// test/emu-conv-mma-grad.test.ts (whose header states the rules): one training step of a chain with odd
// planes (9×7, 7×5; 128-row blocks span images), a 5×5 pad-2 and a 3×3 pad-0 conv, N tiles past the
// columns, a batch of 3 on grids sized for 4, and a data gradient with 20 channels (not a multiple of 32:
// it keeps the channel-major halo). CI: which kernels take the layout, and the bank-conflict count of
// every ldmatrix phase of NIN's and this chain's grids (conv-mma-taps-banks.ts). The emulated step: with
// NINCC_TEST_FULL=1 (its g++ build is over CI's budget).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildArtifact } from '../compiler/build.js';
import { compileModel, compileSpec, type Compiled } from '../compiler/pipeline.js';
import type { Ablations } from '../compiler/ablations.js';
import { tapsFallback, tapsOrder, tapsPlan } from '../compiler/backends/cuda/conv-mma-taps-halo.js';
import { tapsConflicts } from '../compiler/backends/cuda/conv-mma-taps-banks.js';
import { loadWith, readWeights, rng, stepWithExactLogits } from './reference/artifacts.js';
import { withEnv } from './reference/env.js';
import { chainReference, chainWeights, type Chain, type Conv, convCall, sparseImages, worst } from './reference/bf16-bound.js';

const STEM: Conv = { C: 3, H: 17, W: 13, K: 32, R: 3, S: 3, sh: 2, sw: 2, ph: 1, pw: 1 }; // → 32×9×7 (gathers: strided)
const C5X5: Conv = { C: 32, H: 9, W: 7, K: 32, R: 5, S: 5, sh: 1, sw: 1, ph: 2, pw: 2 }; // → 32×9×7: both passes tap-major
const C3X3: Conv = { C: 32, H: 9, W: 7, K: 20, R: 3, S: 3, sh: 1, sw: 1, ph: 0, pw: 0 }; // → 20×7×5: forward tap-major, data gradient (20 channels) channel-major
const C1X1: Conv = { C: 20, H: 7, W: 5, K: 6, R: 1, S: 1, sh: 1, sw: 1, ph: 0, pw: 0 }; // → 6×7×5
const CLASSES = 3;
const FEATURES = 6 * 7 * 5;
const SPEC = `model mma_taps { input 3x17x13  ${convCall(STEM)}  relu  ${convCall(C5X5)}  relu  ${convCall(C3X3)}  relu  ${convCall(C1X1)}  view(-1)  linear(${FEATURES}, ${CLASSES})  logsoftmax }`;
const CONVS: readonly (readonly [string, Conv])[] = [['conv1', STEM], ['conv3', C5X5], ['conv5', C3X3], ['conv7', C1X1]];
/** How far below its mean each conv's bias pulls a channel, so that the ReLUs drop values (the dReLU rebuild matters). */
const BIAS_PULL: Record<string, number> = { conv1: 1, conv3: 1, conv5: 1, conv7: 0 };

function compiled(source: string, maxBatch: number, ablations: Ablations = {}): Compiled {
  const r = compileSpec(source, 'taps.model', { device: 'emu' });
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  return compileModel(r.model, { target: 'emu', maxBatch, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision: 'bf16', ablations });
}

/** The fused text of each training forward, data gradient and weight copy, by kernel name. */
const fusedTexts = (c: Compiled) => new Map((c.cuda?.kernels ?? []).filter((k) => /_conv_(fwd_fused|dgrad_fused|weight_bf16(_2)?)$/.test(k.name)).map((k) => [k.name, k.fused]));

describe('the tap-major halo (compiled, no build)', () => {
  it('the stride-1 k×k training convs with channels in 32s take it, their weight copies follow; 20 channels and the switch off keep the channel-major halo (inference: emu-conv-mma-infer-taps.test.ts)', () => {
    const texts = fusedTexts(compiled(SPEC, 4));
    const tapMajor = [...texts].filter(([, f]) => /channels innermost/.test(f)).map(([k]) => k).sort();
    expect(tapMajor).toEqual(['k3_conv_dgrad_fused', 'k3_conv_fwd_fused', 'k5_conv_fwd_fused']);
    const copies = [...texts].filter(([, f]) => /tap-major per 32 channels/.test(f)).map(([k]) => k).sort();
    expect(copies).toEqual(['k3_conv_weight_bf16', 'k3_conv_weight_bf16_2', 'k5_conv_weight_bf16']);
    expect(texts.get('k5_conv_dgrad_fused')).toMatch(/dY' staged once per 32 channels in a shared halo .* \+ channel-major: 20 channels, not a multiple of 32/);
    const off = compiled(SPEC, 4, { tapsHalo: false });
    for (const [k, f] of fusedTexts(off)) expect(f, k).not.toMatch(/channels innermost|tap-major/);
    for (const k of off.cuda?.kernels ?? []) if (k.name.endsWith('conv_infer')) expect(k.fused, k.name).not.toMatch(/channels innermost/);
  });

  it('a data gradient after a grad_rebuild pass (no rebuild table) runs tap-major where the table kept it channel-major: NIN\'s k31, 1024→384 on 7×7 at batch 128', () => {
    const k31 = { C: 384, H: 7, W: 7, K: 1024, P: 7, Q: 7, R: 3, S: 3, sh: 1, sw: 1, ph: 1, pw: 1 };
    expect(tapsOrder(k31, 'dgrad', 128, {})).toBe(true);
    expect(tapsOrder({ ...k31, gBn: true }, 'dgrad', 128, {})).toBe(false);
    expect(tapsFallback({ ...k31, gBn: true }, 'dgrad', 128, {})).toBe('channel-major: a tap-major halo with B and the rebuild table would pass 48 KiB of shared memory');
    // The weight copy is told what its data gradient is told, so both take the same k order, with the pass and without
    // (a BN after the 5×5 conv: its data gradient rebuilds dY' itself when there is no pass).
    const withBn = SPEC.replace(`${convCall(C5X5)}  relu`, `${convCall(C5X5)}  bn(32)  relu`);
    expect(withBn).not.toBe(SPEC);
    for (const ablations of [{}, { rebuildPass: false }] as const) {
      const steps = compiled(withBn, 4, ablations).lowered.programs.flatMap((p) => p.steps);
      const dgrads = steps.filter((s) => s.op === 'conv_dgrad_fused' && s.buffers.wb !== undefined);
      expect(dgrads.length).toBe(2);
      for (const d of dgrads) {
        const copy = steps.find((s) => s.op === 'conv_weight_bf16' && s.buffers.wb === d.buffers.wb)!;
        expect((copy.consts as { gBn?: boolean }).gBn ?? false, `${d.kernel} ${JSON.stringify(ablations)}`).toBe((d.consts as { gBn?: boolean }).gBn ?? false);
      }
      expect(dgrads.some((d) => (d.consts as { gBn?: boolean }).gBn === true)).toBe('rebuildPass' in ablations);
    }
  });

  it('no ldmatrix phase of the halo meets a bank conflict: this chain at batch 4 and NIN at batch 128, with and without statistics rows', () => {
    const nin = compiled(readFileSync(join(import.meta.dirname, '../models/nin.model'), 'utf8'), 128);
    const counted: string[] = [];
    for (const [c, batch] of [[compiled(SPEC, 4), 4], [nin, 128]] as const) {
      for (const step of c.lowered.programs.flatMap((p) => p.steps)) {
        if (step.op !== 'conv_fwd_fused' && step.op !== 'conv_dgrad_fused') continue;
        const pass = step.op === 'conv_fwd_fused' ? 'forward' : 'dgrad';
        for (const stats of [false, true]) {
          const plan = tapsPlan(step.consts as Parameters<typeof tapsPlan>[0], pass, batch, {}, stats, 0);
          if (!plan) continue;
          counted.push(`${step.kernel} ${stats}`);
          expect(tapsConflicts(plan, batch), `${step.kernel} stats ${stats}`).toBe(0);
        }
      }
    }
    // The chain's k3 forward and data gradient and k5 forward; NIN's 5×5 and two 3×3 forwards and data gradients.
    expect(counted.length, counted.join(', ')).toBe(2 * (3 + 6));
  });
});

/** The test's weights (test/reference/bf16-bound.ts chainWeights says why they are all positive). */
const CHAIN: Chain = { convs: CONVS, biasPull: BIAS_PULL, reluAfter: new Set(['conv1', 'conv3', 'conv5']), linear: 'linear9', classes: CLASSES, features: FEATURES };
const chooseWeights = (images: Float32Array, n: number) => chainWeights(CHAIN, images, n, rng(7));

if (process.env.NINCC_TEST_FULL !== '1') console.warn('test/emu-conv-mma-taps.test.ts: the emulated step against float64 runs with NINCC_TEST_FULL=1; CI checks the compiled kernels and the bank-conflict count');
describe.runIf(process.env.NINCC_TEST_FULL === '1')('the tap-major halo on emu against float64 (NINCC_TEST_FULL=1)', () => {
  let root: string;
  let emuDir: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'nincc-mma-taps-'));
    const r = compileSpec(SPEC, 'mma_taps.model');
    if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
    emuDir = join(root, 'emu');
    withEnv({ NINCC_NVCC: '0' }, () => buildArtifact(r.model!, SPEC, { outDir: emuDir, target: 'emu', maxBatch: 4, precision: 'bf16' }));
  }, 300_000);
  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('one step: every conv weight and bias gradient within the bf16 bound of float64; two emu runs bitwise equal', async () => {
    const n = 3;
    const next = rng(29);
    const images = sparseImages(n * STEM.C * STEM.H * STEM.W, 0.1, next);
    const labels = new Int32Array(n);
    const tensors = chooseWeights(images, n);
    const emu = await loadWith(emuDir, 'emu', 11, tensors);
    const again = await loadWith(emuDir, 'emu', 11, tensors);
    try {
      await stepWithExactLogits([emu, again], images, labels, CLASSES);
      const t = readWeights(emu);
      const expected = chainReference(CHAIN, n, images, labels, (name) => t.get(name)!);
      // Each ReLU drops values for certain (so a data gradient without its dReLU fails), and few are in doubt.
      for (const name of ['conv1', 'conv3', 'conv5']) {
        const y = expected.get(name)!.y;
        expect(y.v.filter((v, i) => v < -y.e[i]).length, name).toBeGreaterThan(y.v.length / 20);
        expect(y.v.filter((v, i) => Math.abs(v) <= y.e[i]).length, name).toBeLessThan(y.v.length / 50);
      }
      for (const [name, ref] of expected) {
        for (const [part, r] of [['weight', ref.dw], ['bias', ref.db]] as const) {
          const e = emu.getGradient(`${name}.${part}`);
          const { ratio, at } = worst(e, r.v, r.e);
          console.log(`${name}.${part}: worst ${ratio.toFixed(3)} of its bound`);
          expect(ratio, `${name}.${part}[${at}]: emu ${e[at]}, float64 ${r.v[at]}, bound ${r.e[at]}`).toBeLessThanOrEqual(1);
          const scale = r.v.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          expect(Math.max(...r.e), `${name}.${part}`).toBeLessThan(0.05 * scale);
          expect(Array.from(again.getGradient(`${name}.${part}`)), `${name}.${part}: a second emu run`).toEqual(Array.from(e));
        }
      }
    } finally {
      await Promise.all([emu, again].map((m) => m.dispose()));
    }
  }, 300_000);
});
