// Torch7's semantics, each stated by hand and checked through built artifacts (docs/design.md §3): BN's biased and
// unbiased variances and momentum, pooling's floor mode, −inf padding, count_include_pad and first-max
// ties, torch/optim SGD with momentum and weight decay, and dropout's seeding, scaling and eval identity.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Model } from '../runtime/model.js';
import {
  buildSpec, expectClose, loadBuilt, maxError, randomImages, randomizeAffine, randomLabels, readWeights, removeBuilds, rng, uniform, type Built,
} from './reference/artifacts.js';
import { observeDropout } from './reference/dropout-mask.js';
import { forward, runLayers } from './reference/interpret.js';
import { maxPoolArgmax, nllLoss, type Batch } from './reference/layers.js';
import { BN_PROBE, DROPOUT_MLP, EVERY_LAYER, POOL_PROBE } from './reference/specs.js';

let bnProbe: Built;
let poolProbe: Built;
let every: Built;
let mlp: Built;

beforeAll(() => {
  bnProbe = buildSpec('bn_probe', BN_PROBE, 4);
  poolProbe = buildSpec('pool_probe', POOL_PROBE, 4);
  every = buildSpec('every_layer', EVERY_LAYER, 4);
  mlp = buildSpec('dropout_mlp', DROPOUT_MLP, 4);
});

afterAll(() => removeBuilds());

async function using<T>(b: Built, seed: number, body: (m: Model) => Promise<T>): Promise<T> {
  const m = await loadBuilt(b, seed);
  try {
    return await body(m);
  } finally {
    m.dispose();
  }
}

/** Each row of log-probabilities minus its first entry: the pre-logsoftmax values up to a per-row constant. */
function rowDifferences(logp: ArrayLike<number>, classes: number): number[] {
  return Array.from(logp, (v, i) => v - logp[i - (i % classes)]);
}

describe('batch normalization (SpatialBatchNormalization, momentum 0.1)', () => {
  // bn_probe: input 2x3x3 → bn(2) → view(-1) → logsoftmax, so the BN outputs are readable from the log-probs.
  const eps = 1e-5;
  const gamma = [1.3, 0.7];
  const beta = [0.2, -0.1];

  /** Per channel of an N×2×3×3 batch: mean, Σ(x − mean)² and the count N·9. */
  function moments(x: Float32Array, n: number) {
    return [0, 1].map((c) => {
      const values = Array.from({ length: n }, (_, i) => Array.from(x.subarray((i * 2 + c) * 9, (i * 2 + c + 1) * 9))).flat();
      const mean = values.reduce((a, b) => a + b, 0) / values.length;
      return { mean, squares: values.reduce((a, v) => a + (v - mean) ** 2, 0), count: values.length };
    });
  }

  /** The BN output y[n][c][i] = (x − mean[c]) / sqrt(var[c] + eps) · γ[c] + β[c], as row differences of a logsoftmax. */
  function expectedDifferences(x: Float32Array, n: number, mean: number[], variance: number[]): number[] {
    const y = Array.from(x, (v, i) => {
      const c = Math.floor(i / 9) % 2;
      return ((v - mean[c]) / Math.sqrt(variance[c] + eps)) * gamma[c] + beta[c];
    });
    return rowDifferences(y, 18);
  }

  it('training normalizes with the biased batch variance; running stats take 0.1 of the mean and the unbiased variance, over three steps', async () => {
    await using(bnProbe, 1, async (m) => {
      m.setTensor('bn1.weight', Float32Array.from(gamma));
      m.setTensor('bn1.bias', Float32Array.from(beta));
      const next = rng(51);
      let rm = [0, 0]; // Torch's initial running statistics
      let rv = [1, 1];
      // The third batch sits at 300 ± 1: a one-pass E[x²] − E[x]² in float32 would lose the variance to cancellation.
      for (const [n, offset] of [[2, 0], [3, 0], [2, 300]]) {
        const x = uniform(n * 18, offset - 1, offset + 2, next);
        const { output } = await m.forwardBackward(x, randomLabels(bnProbe.model, n, next));
        const s = moments(x, n);
        const biased = expectedDifferences(x, n, s.map((c) => c.mean), s.map((c) => c.squares / c.count));
        const unbiased = expectedDifferences(x, n, s.map((c) => c.mean), s.map((c) => c.squares / (c.count - 1)));
        expectClose(rowDifferences(output, 18), biased, 1e-5, `bn output, batch ${n}`);
        expect(maxError(rowDifferences(output, 18), unbiased).err, 'normalizing with the unbiased variance would be visibly different').toBeGreaterThan(1e-3);
        rm = rm.map((v, c) => 0.9 * v + 0.1 * s[c].mean);
        rv = rv.map((v, c) => 0.9 * v + 0.1 * (s[c].squares / (s[c].count - 1)));
        expectClose(m.getTensor('bn1.running_mean'), rm, 1e-6, `running_mean after batch ${n}`);
        expectClose(m.getTensor('bn1.running_var'), rv, 1e-6, `running_var after batch ${n}`);
        const withBiased = rv.map((v, c) => v - 0.1 * (s[c].squares / (s[c].count - 1) - s[c].squares / s[c].count));
        expect(maxError(m.getTensor('bn1.running_var'), withBiased).err, 'the biased variance in the running average would be visibly different').toBeGreaterThan(1e-4);
      }
      // Eval mode: the running statistics just checked, not the batch's.
      const x = uniform(3 * 18, -1, 2, next);
      expectClose(rowDifferences(await m.infer(x), 18), expectedDifferences(x, 3, rm, rv), 1e-5, 'bn eval output');
    });
  });
});

describe('pooling (SpatialMaxPooling / SpatialAveragePooling, floor mode)', () => {
  // pool_probe: input 2x8x8 → conv(2,1,1,1) → maxpool(3,3,2,2,1,1) → avgpool(3,3,2,2,1,1) → view → logsoftmax.
  const setConv = (m: Model, w0: number, w1: number, bias: number) => {
    m.setTensor('conv1.weight', Float32Array.from([w0, w1]));
    m.setTensor('conv1.bias', Float32Array.from([bias]));
  };

  it('output sizes are floor((H + 2p − k)/s) + 1: 8 → 4 → 2 (ceil mode would give 5 → 3)', () => {
    const [, maxpool, avgpool] = poolProbe.model.layers;
    expect(maxpool.output).toEqual([1, 4, 4]);
    expect(avgpool.output).toEqual([1, 2, 2]);
    expect(poolProbe.model.output).toEqual([4]);
  });

  it('max pooling pads with −inf, average pooling divides by the whole window (count_include_pad)', async () => {
    await using(poolProbe, 1, async (m) => {
      setConv(m, 1, 0, 0);
      // Channel 0 is −2 everywhere: every max is −2 (a zero pad would make the first row and column 0);
      // the 2×2 average windows then cover 4, 6, 6 and 9 in-image cells of 9, so the outputs are
      // −2·4/9, −2·6/9, −2·6/9 and −2: a divisor of only the in-image cells would make all four −2.
      const x = new Float32Array(2 * 64).fill(-2);
      for (let i = 64; i < 128; i++) x[i] = i % 7;
      const expected = [-8 / 9, -12 / 9, -12 / 9, -2];
      expectClose(rowDifferences(await m.infer(x), 4), rowDifferences(expected, 4), 1e-6, 'constant −2 input');
      const { output } = await m.forwardBackward(x, [0]);
      expectClose(rowDifferences(output, 4), rowDifferences(expected, 4), 1e-6, 'constant −2 input, training mode');
      // And random inputs that stay negative through the conv (≤ 0.8·(−0.1) + 0.3·(−0.1) − 0.5), against the reference.
      const next = rng(61);
      setConv(m, 0.8, 0.3, -0.5);
      const y = uniform(3 * 128, -3, -0.1, next);
      expectClose(await m.infer(y), forward(poolProbe.model, readWeights(m), y, 3, { mode: 'eval' }).output.data, 1e-5, 'negative inputs');
    });
  });

  it('ties go to the first maximum in window order (the conv weight gradient shows which input was taken)', async () => {
    await using(poolProbe, 1, async (m) => {
      // y = 1·x0 + 0·x1: x0 in {0, 1} makes ties in nearly every window, exactly (0·x1 adds nothing), while
      // x1 is distinct everywhere, so d loss / d w1 = Σ g[o]·x1[argmax(o)] says which tied input was routed.
      setConv(m, 1, 0, 0);
      const next = rng(62);
      const n = 2;
      const x = new Float32Array(n * 128);
      for (let i = 0; i < x.length; i++) x[i] = i % 128 < 64 ? Math.floor(next() * 2) : 0.5 + next();
      const labels = [1, 2];
      await m.forwardBackward(x, labels);
      const dw1 = m.getGradient('conv1.weight')[1];
      const expected = (x0: Float32Array) => {
        // g = d loss / d(maxpool output), by central differences of the smooth layers after it.
        const [, maxpool, ...tail] = poolProbe.model.layers;
        if (maxpool.kind !== 'maxpool') throw new Error('pool_probe: layer 2 should be the max pool');
        const channel0: Batch = { n, shape: [1, 8, 8], data: Float64Array.from({ length: n * 64 }, (_, i) => x0[Math.floor(i / 64) * 128 + (i % 64)]) };
        const argmax = maxPoolArgmax(channel0, maxpool.attrs).index;
        const values = Float64Array.from(argmax, (at, o) => channel0.data[Math.floor(o / 16) * 64 + at]);
        const loss = (v: Float64Array) => nllLoss(runLayers(tail, { n, shape: [1, 4, 4], data: v }, new Map(), { mode: 'train' }).output, labels);
        let sum = 0;
        for (let o = 0; o < values.length; o++) {
          const h = 1e-6;
          const up = Float64Array.from(values);
          const down = Float64Array.from(values);
          up[o] += h;
          down[o] -= h;
          sum += ((loss(up) - loss(down)) / (2 * h)) * x[Math.floor(o / 16) * 128 + 64 + argmax[o]];
        }
        return sum;
      };
      const first = expected(x);
      // The same ties broken towards the last maximum instead: nudge later (row-major) positions up.
      const lastWins = expected(Float32Array.from(x, (v, i) => (i % 128 < 64 ? v + 1e-4 * (i % 64) : v)));
      expect(Math.abs(first - lastWins), 'the tie rule must matter for this input').toBeGreaterThan(1e-2);
      expect(Math.abs(dw1 - first), `d loss / d w1 = ${dw1}; first max gives ${first}, last max ${lastWins}`).toBeLessThan(1e-5);
    });
  });
});

describe('SGD (torch/optim: dampening 0, no Nesterov, weight decay on every parameter)', () => {
  it('buf = g + wd·w on the first step, buf ← m·buf + g + wd·w after, a fresh buffer after resetOptimizer, plain g + wd·w with momentum 0', async () => {
    await using(every, 71, async (m) => {
      const next = rng(71);
      randomizeAffine(m, next); // BN β ≠ 0, so weight decay on it shows
      const lr = 0.1;
      const wd = 0.05;
      const momentum = 0.9;
      let buf: Map<string, Float64Array> | undefined; // the momentum buffers torch/optim would hold
      let previous: Map<string, Float64Array> | undefined; // the last step's, kept across a reset
      // [batch size, reset the optimizer before the step, momentum]
      const steps: [number, boolean, number][] = [[3, false, momentum], [2, false, momentum], [4, true, momentum], [1, false, 0]];
      for (const [k, [n, reset, mom]] of steps.entries()) {
        const images = randomImages(every.model, n, next);
        const labels = randomLabels(every.model, n, next);
        const w = readWeights(m);
        await m.forwardBackward(images, labels);
        const g = new Map(m.info.params.map((t) => [t.name, Float64Array.from(m.getGradient(t.name))]));
        await m.forwardBackward(images, labels);
        for (const t of m.info.params) expect(m.getGradient(t.name), `${t.name}: forwardBackward is deterministic`).toEqual(Float32Array.from(g.get(t.name)!));
        if (reset) {
          m.resetOptimizer();
          buf = undefined;
        }
        await m.trainStep(images, labels, { lr, weightDecay: wd, momentum: mom });
        const nextBuf = new Map<string, Float64Array>();
        for (const t of m.info.params) {
          const w0 = w.get(t.name)!;
          const d = g.get(t.name)!.map((v, i) => v + wd * w0[i]);
          const b = mom === 0 ? d : buf ? d.map((v, i) => mom * buf!.get(t.name)![i] + v) : d;
          nextBuf.set(t.name, b);
          const expected = w0.map((v, i) => v - lr * b[i]);
          const actual = m.getTensor(t.name);
          // float32: a few roundings of w, lr·buf and the buffer terms, each ~6e-8 relative.
          const bound = (i: number) => 1e-6 * (Math.abs(w0[i]) + lr * Math.abs(b[i])) + 1e-9;
          let worst = 0;
          for (let i = 0; i < t.size; i++) {
            const err = Math.abs(actual[i] - expected[i]);
            expect(err, `step ${k + 1}: ${t.name}[${i}] is ${actual[i]}, expected ${expected[i]}`).toBeLessThanOrEqual(bound(i));
            worst = Math.max(worst, Math.abs(lr * wd * w0[i]) / bound(i));
          }
          expect(worst, `step ${k + 1}: ${t.name}'s weight decay term must be far above the tolerance`).toBeGreaterThan(100);
        }
        // The alternatives would be visibly different: no momentum term on a later step, a kept buffer after a reset.
        const t = m.info.params[0];
        const w0 = w.get(t.name)!;
        const d = g.get(t.name)!.map((v, i) => v + wd * w0[i]);
        if (buf && mom !== 0) expect(maxError(m.getTensor(t.name), w0.map((v, i) => v - lr * d[i])).err, 'without momentum').toBeGreaterThan(1e-4);
        if (reset && previous) {
          const kept = w0.map((v, i) => v - lr * (momentum * previous!.get(t.name)![i] + d[i]));
          expect(maxError(m.getTensor(t.name), kept).err, 'with the old buffer kept').toBeGreaterThan(1e-4);
        }
        buf = mom === 0 ? undefined : nextBuf;
        previous = nextBuf;
      }
    });
  });
});

describe('dropout (nn.Dropout v2: kept units scaled by 1/(1−p) in training, identity in eval)', () => {
  // dropout_mlp: input 1x4x5 → view → linear(20, 48) → dropout(0.4) → linear(48, 6) → logsoftmax.
  const p = 0.4;

  it('training: every unit is 0 or x/(1−p), about p of them dropped, and the output and loss follow that mask', async () => {
    await using(mlp, 81, async (m) => {
      const next = rng(81);
      let kept = 0;
      let units = 0;
      for (let call = 0; call < 6; call++) {
        const image = randomImages(mlp.model, 1, next);
        const label = randomLabels(mlp.model, 1, next);
        const { loss, output } = await m.forwardBackward(image, label);
        const seen = observeDropout(m, mlp.model, image, label[0], output);
        seen.keep.forEach((k, h) => {
          const scaled = seen.input[h] / (1 - p);
          const err = Math.abs(seen.output[h] - (k ? scaled : 0));
          expect(err, `call ${call}, unit ${h}: dropout gave ${seen.output[h]} for input ${seen.input[h]} (kept: ${scaled})`).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(scaled)));
        });
        kept += seen.keep.reduce((a, b) => a + b, 0);
        units += seen.keep.length;
        const ref = forward(mlp.model, readWeights(m), image, 1, { mode: 'train', dropoutMasks: new Map([[3, seen.keep]]) });
        expectClose(output, ref.output.data, 2e-5, `call ${call} output`);
        expectClose([loss], [nllLoss(ref.output, label)], 2e-5, `call ${call} loss`);
      }
      // Binomial(288, 0.6): mean 172.8, sd 8.3; ±5 sd.
      expect(kept).toBeGreaterThan(units * (1 - p) - 5 * Math.sqrt(units * p * (1 - p)));
      expect(kept).toBeLessThan(units * (1 - p) + 5 * Math.sqrt(units * p * (1 - p)));
    });
  });

  it('the mask depends only on the call seed: the same seed repeats it, the next call draws another', async () => {
    const next = rng(82);
    const image = randomImages(mlp.model, 1, next);
    const label = randomLabels(mlp.model, 1, next);
    const masks = async (m: Model) => {
      const out: string[] = [];
      for (let call = 0; call < 3; call++) {
        const { output } = await m.forwardBackward(image, label);
        out.push(observeDropout(m, mlp.model, image, label[0], output).keep.join(''));
      }
      return out;
    };
    const [first, again, other] = await using(mlp, 5, async (m) => {
      const a = await masks(m);
      m.initParameters(5); // same weights, and the call seeds start over
      return [a, await masks(m), await using(mlp, 5, masks)];
    });
    expect(again).toEqual(first);
    expect(other).toEqual(first);
    expect(new Set(first).size, 'consecutive calls draw different masks').toBe(3);
  });

  it('eval: the identity (infer equals the reference without dropout, every time)', async () => {
    await using(mlp, 83, async (m) => {
      const next = rng(83);
      const images = randomImages(mlp.model, 4, next);
      const expected = forward(mlp.model, readWeights(m), images, 4, { mode: 'eval' }).output.data;
      const first = await m.infer(images);
      expectClose(first, expected, 2e-5, 'infer');
      await m.forwardBackward(images.subarray(0, 20), [0]); // a training call between changes nothing in eval
      expect(await m.infer(images)).toEqual(first);
    });
  });
});
