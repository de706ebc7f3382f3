// A block's inference conv on bf16 tensor cores (compiler/backends/cuda/conv-mma.ts, `conv_infer` with
// `residual` or `yTotal`): the conv closing a residual block adds its shortcut before the block's ReLU in the
// epilogue, and a concat branch's conv writes its channel slice of the concat's buffer, as the fp32 kernel
// (conv.ts) does. Compile-only checks on the shipped ResNet-18 and GoogLeNet; one tiny model on emu against
// the cpu device (fp32) within a bound derived from bf16 rounding, as test/emu-conv-mma.test.ts derives it
// for a plain conv, plus the shortcut's term: y = relu(Σ a·b + bias + r). The shortcut r is the model's input
// (exact in fp32) and is added in fp32 after the K products and the bias: one more rounding of a partial sum,
// so γ_{K+2} bounds the emu's and the cpu's sums over T' = Σ|â·b̂| + |bias| + |r|.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildArtifact } from '../compiler/build.js';
import { compileModel, compileSpec } from '../compiler/pipeline.js';
import { load } from '../runtime/model.js';
import { randomImages, randomizeAffine, readWeights, rng, uniform } from './reference/artifacts.js';
import { withEnv } from './reference/env.js';

const U = 2 ** -24;
const BF16 = 2 ** -8;
const gamma = (n: number) => (n * U) / (1 - n * U);
const EPS = 1e-5;

const root = mkdtempSync(join(tmpdir(), 'nincc-mma-blocks-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function shaped(source: string, file: string) {
  const r = compileSpec(source, file);
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  return r.model;
}

/** The bf16 emu build's conv_infer kernels' `fused` lines. */
function inferConvs(source: string, file: string): string[] {
  const compiled = compileModel(shaped(source, file), { target: 'emu', maxBatch: 4, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision: 'bf16' });
  return compiled.cuda!.kernels.filter((k) => k.name.endsWith('_conv_infer')).map((k) => k.fused);
}

/** ResNet-18's two block kinds (models/resnet-18.model's defs) at a small size: compiling the whole model costs CI tens of seconds. */
const RESNET_BLOCKS = readFileSync('models/resnet-18.model', 'utf8').replace(/conv\(3, 64, 7, 7[^\n]*\n[\s\S]*?\n}\n$/, 'conv(3, 8, 3, 3, 1, 1, 1, 1):noBias()  bn(8)  relu\n  basic(8)  down(8, 16)  basic(16)\n  avgpool(4, 4, 1, 1)  view(16)  linear(16, 10)  logsoftmax\n}\n').replace('input 3x224x224', 'input 3x8x8');

describe('bf16 inference convs that close a block', () => {
  it('ResNet-18\'s blocks: every conv that adds a shortcut runs on tensor cores with the add in its epilogue', () => {
    expect(RESNET_BLOCKS).toContain('basic(8)  down(8, 16)  basic(16)');
    const convs = inferConvs(RESNET_BLOCKS, 'resnet-18.model');
    const closing = convs.filter((f) => f.includes('epilogue: residual add'));
    expect(closing.length).toBe(3); // one per block
    for (const f of convs) expect(f).toContain('bf16 tensor-core');
  });

  it('GoogLeNet: the concat branches\' convs write their slices in place on tensor cores', () => {
    const convs = inferConvs(readFileSync('models/googlenet.model', 'utf8'), 'googlenet.model');
    const slices = convs.filter((f) => f.includes('epilogue: concat slice in place'));
    expect(slices.length).toBeGreaterThan(20);
    for (const f of slices) expect(f).toContain('bf16 tensor-core');
  });

  it('a residual block and concat slices on emu are within the bf16 bound of cpu at batches 3 and 4', async () => {
    // Branch 1: a residual block whose shortcut is the input; branch 2: a 3×3 conv writing channels 32… of the
    // concat; branch 3: a 1×1 conv writing the last 3. With 32 input channels both 3×3 convs read a tap-major
    // halo (conv-mma-taps-halo.ts), and 5 output channels leave most of an N tile empty.
    const C = 32, H = 7, W = 6, K2 = 5, K3 = 3;
    const source = `model blocks {
  input ${C}x${H}x${W}
  concat {
    branch { residual { branch { conv(${C}, ${C}, 3, 3, 1, 1, 1, 1)  bn(${C}) } branch { identity } }  relu }
    branch { conv(${C}, ${K2}, 3, 3, 1, 1, 1, 1)  bn(${K2})  relu }
    branch { conv(${C}, ${K3}, 1, 1, 1, 1)  bn(${K3})  relu }
  }
}
`;
    const model = shaped(source, 'blocks.model');
    const dir = join(root, 'blocks');
    withEnv({ NINCC_NVCC: '0' }, () => buildArtifact(model, source, { outDir: dir, target: 'emu', maxBatch: 4, precision: 'bf16' }));
    const report = readFileSync(join(dir, 'report.txt'), 'utf8');
    expect(report).toMatch(/bf16 tensor-core[^\n]*channels innermost[^\n]*epilogue: residual add/);
    expect(report).toMatch(/bf16 tensor-core[^\n]*channels innermost[^\n]*epilogue: concat slice in place/);
    expect(report).toMatch(/bf16 tensor-core(?:(?!channels innermost)[^\n])*epilogue: concat slice in place/);
    const cpu = await load(dir, { device: 'cpu', seed: 5 });
    const emu = await load(dir, { device: 'emu', seed: 5 });
    try {
      const next = rng(23);
      for (const m of [cpu, emu]) randomizeAffine(m, rng(7));
      const t0 = readWeights(cpu);
      const convs = [...t0.keys()].filter((n) => n.endsWith('.weight') && t0.get(n)!.length >= K3 * C).sort((a, b) => parseInt(a.slice(4)) - parseInt(b.slice(4)));
      const bns = [...t0.keys()].filter((n) => n.endsWith('.running_mean')).map((n) => n.replace('.running_mean', '')).sort((a, b) => parseInt(a.slice(2)) - parseInt(b.slice(2)));
      expect(convs.length).toBe(3);
      expect(bns.length).toBe(3);
      for (const bn of bns) {
        const k = t0.get(`${bn}.running_mean`)!.length;
        const stats = { mean: uniform(k, -0.2, 0.2, next), variance: uniform(k, 0.5, 2, next) };
        for (const m of [cpu, emu]) {
          m.setTensor(`${bn}.running_mean`, stats.mean);
          m.setTensor(`${bn}.running_var`, stats.variance);
        }
      }
      const t = readWeights(cpu);
      // Each conv with the BN after it (a layer-index order: the residual's conv and BN come first), folded in float64.
      const folded = convs.map((conv, i) => {
        const w = t.get(conv)!, b = t.get(conv.replace('.weight', '.bias'))!;
        const bn = bns[i];
        const g = t.get(`${bn}.weight`)!, beta = t.get(`${bn}.bias`)!, mu = t.get(`${bn}.running_mean`)!, v = t.get(`${bn}.running_var`)!;
        const taps = w.length / b.length;
        return {
          K: b.length, taps,
          w: w.map((x, j) => x * (g[Math.floor(j / taps)] / Math.sqrt(v[Math.floor(j / taps)] + EPS))),
          b: b.map((x, k) => (x - mu[k]) * (g[k] / Math.sqrt(v[k] + EPS)) + beta[k]),
        };
      });
      expect(folded.map((f) => f.K)).toEqual([C, K2, K3]);
      const offsets = [0, C, C + K2], total = C + K2 + K3;
      const dB = BF16 + 2 ** -23; // the fold rounds the weights to fp32 once
      const dA = BF16;
      for (const n of [3, 4]) {
        const x = randomImages(model, n, next);
        const a = await cpu.infer(x, n);
        const e = await emu.infer(x, n);
        expect(e.length).toBe(n * total * H * W);
        let worst = 0, worstAt = -1, scale = 0, largestBound = 0, differs = false;
        for (let img = 0; img < n; img++)
          for (const [branch, f] of folded.entries()) {
            const R = branch < 2 ? 3 : 1, pad = (R - 1) / 2;
            for (let k = 0; k < f.K; k++)
              for (let p = 0; p < H; p++)
                for (let q = 0; q < W; q++) {
                  let sum = 0, T = 0;
                  for (let ch = 0; ch < C; ch++)
                    for (let r = 0; r < R; r++)
                      for (let s = 0; s < R; s++) {
                        const h = p - pad + r, u = q - pad + s;
                        if (h < 0 || h >= H || u < 0 || u >= W) continue;
                        const prod = x[((img * C + ch) * H + h) * W + u] * f.w[((k * C + ch) * R + r) * R + s];
                        sum += prod;
                        T += Math.abs(prod);
                      }
                  const shortcut = branch === 0 ? x[((img * C + k) * H + p) * W + q] : 0;
                  const value = Math.max(sum + f.b[k] + shortcut, 0);
                  const rest = Math.abs(f.b[k]) + Math.abs(shortcut);
                  const bound = (dA + dB + dA * dB) * T + gamma(f.taps + 2) * ((1 + dA) * (1 + dB) * T + rest) + gamma(f.taps + 2) * (T + rest) + 1e-30;
                  const at = ((img * total + offsets[branch] + k) * H + p) * W + q;
                  const ratio = Math.abs(e[at] - a[at]) / bound;
                  if (!(ratio <= worst)) [worst, worstAt] = [ratio, at];
                  scale = Math.max(scale, Math.abs(value));
                  largestBound = Math.max(largestBound, bound);
                  if (e[at] !== a[at]) differs = true;
                }
          }
        expect(worst, `n=${n}: output ${worstAt}: emu ${e[worstAt]}, cpu ${a[worstAt]}`).toBeLessThanOrEqual(1);
        expect(largestBound).toBeLessThan(0.05 * scale); // a bound from bf16 rounding, not a blanket tolerance
        expect(differs).toBe(true); // the emu build does round to bf16
      }
    } finally {
      cpu.dispose();
      emu.dispose();
    }
  }, 300_000);
});
