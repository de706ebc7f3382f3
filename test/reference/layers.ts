// Naive float64 definitions of every layer's forward pass, written from Torch7's semantics (docs/design.md §3)
// and not from the kernels: one loop nest per formula, no blocking, no fusion. Tensors are NCHW (or N×F).
import type { ConvAttrs, LrnAttrs, PoolAttrs, ThresholdAttrs, ZeroPadAttrs } from '../../compiler/ir.js';

/** One activation batch: `shape` is per image ([C, H, W] or [F]), `data` holds n images. */
export interface Batch {
  readonly n: number;
  readonly shape: readonly number[];
  readonly data: Float64Array;
}

export const elementsOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Torch's floor-mode output size, for conv and both pools. */
export const outSize = (input: number, kernel: number, stride: number, pad: number) => Math.floor((input + 2 * pad - kernel) / stride) + 1;

/**
 * A pool's output sizes [P, Q] as THNN's Spatial*Pooling computes them: floor, or in ceil mode the ceiling of
 * the window count, less a last window that would start at or past the input plus its near padding (only
 * when the pool is padded on either side).
 */
export function poolSizes(H: number, W: number, a: PoolAttrs): [number, number] {
  if (!a.ceil) return [outSize(H, a.kH, a.dH, a.padH), outSize(W, a.kW, a.dW, a.padW)];
  const one = (input: number, k: number, d: number, p: number) => {
    const o = Math.ceil((input + 2 * p - k) / d) + 1;
    return (a.padW > 0 || a.padH > 0) && (o - 1) * d >= input + p ? o - 1 : o;
  };
  return [one(H, a.kH, a.dH, a.padH), one(W, a.kW, a.dW, a.padW)];
}

/** Cross-correlation with zero padding: y[n][k][i][j] = b[k] + Σ w[k][c][r][s]·x[n][c][i·dH−padH+r][j·dW−padW+s]. */
export function conv(x: Batch, a: ConvAttrs, w: Float64Array, b: Float64Array | undefined): Batch {
  const [C, H, W] = x.shape;
  const P = outSize(H, a.kH, a.dH, a.padH);
  const Q = outSize(W, a.kW, a.dW, a.padW);
  const K = a.nOut;
  const y = new Float64Array(x.n * K * P * Q);
  // The sum above, one weight at a time over every output pixel (the same terms, in a cache-friendly order).
  for (let n = 0; n < x.n; n++)
    for (let k = 0; k < K; k++) {
      const out = y.subarray((n * K + k) * P * Q, (n * K + k + 1) * P * Q);
      if (b) out.fill(b[k]);
      for (let c = 0; c < C; c++) {
        const plane = x.data.subarray((n * C + c) * H * W, (n * C + c + 1) * H * W);
        for (let r = 0; r < a.kH; r++)
          for (let s = 0; s < a.kW; s++) {
            const weight = w[((k * C + c) * a.kH + r) * a.kW + s];
            for (let i = 0; i < P; i++) {
              const h = i * a.dH - a.padH + r;
              if (h < 0 || h >= H) continue; // zero padding
              for (let j = 0; j < Q; j++) {
                const v = j * a.dW - a.padW + s;
                if (v >= 0 && v < W) out[i * Q + j] += weight * plane[h * W + v];
              }
            }
          }
      }
    }
  return { n: x.n, shape: [K, P, Q], data: y };
}

/**
 * Max pooling's choice: for each output, the index (h·W + w within its plane) of the input it takes. Floor
 * mode; padded positions are −inf (never chosen); ties keep the first maximum in row-major window order.
 */
export function maxPoolArgmax(x: Batch, a: PoolAttrs): { shape: number[]; index: Int32Array } {
  const [C, H, W] = x.shape;
  const [P, Q] = poolSizes(H, W, a);
  const index = new Int32Array(x.n * C * P * Q).fill(-1);
  for (let plane = 0; plane < x.n * C; plane++)
    for (let i = 0; i < P; i++)
      for (let j = 0; j < Q; j++) {
        let best = -Infinity;
        for (let r = 0; r < a.kH; r++)
          for (let s = 0; s < a.kW; s++) {
            const h = i * a.dH - a.padH + r;
            const v = j * a.dW - a.padW + s;
            if (h < 0 || h >= H || v < 0 || v >= W) continue; // −inf
            const value = x.data[(plane * H + h) * W + v];
            if (value > best) { // strictly greater: the first of equal maxima wins
              best = value;
              index[(plane * P + i) * Q + j] = h * W + v;
            }
          }
      }
  return { shape: [C, P, Q], index };
}

export function maxPool(x: Batch, a: PoolAttrs): Batch {
  const { shape, index } = maxPoolArgmax(x, a);
  const [C, P, Q] = shape;
  const plane = elementsOf(x.shape) / C;
  const y = Float64Array.from(index, (at, o) => (at < 0 ? -Infinity : x.data[Math.floor(o / (P * Q)) * plane + at]));
  return { n: x.n, shape, data: y };
}

/**
 * Average pooling, count_include_pad: padded zeros count; the divisor is the window clipped to the padded
 * image (THNN's pool_size), which is kW·kH except for a ceil-mode window past the far padding.
 */
export function avgPool(x: Batch, a: PoolAttrs): Batch {
  const [C, H, W] = x.shape;
  const [P, Q] = poolSizes(H, W, a);
  const y = new Float64Array(x.n * C * P * Q);
  for (let plane = 0; plane < x.n * C; plane++)
    for (let i = 0; i < P; i++)
      for (let j = 0; j < Q; j++) {
        let sum = 0;
        for (let r = 0; r < a.kH; r++)
          for (let s = 0; s < a.kW; s++) {
            const h = i * a.dH - a.padH + r;
            const v = j * a.dW - a.padW + s;
            if (h >= 0 && h < H && v >= 0 && v < W) sum += x.data[(plane * H + h) * W + v];
          }
        const rows = Math.min(i * a.dH - a.padH + a.kH, H + a.padH) - (i * a.dH - a.padH);
        const cols = Math.min(j * a.dW - a.padW + a.kW, W + a.padW) - (j * a.dW - a.padW);
        y[(plane * P + i) * Q + j] = sum / (rows * cols);
      }
  return { n: x.n, shape: [C, P, Q], data: y };
}

export interface ChannelStats {
  readonly mean: Float64Array;
  readonly biasedVar: Float64Array;
  readonly unbiasedVar: Float64Array;
}

/** Per-channel mean and variances over batch and plane (two passes). */
export function channelStats(x: Batch): ChannelStats {
  const [C] = x.shape;
  const plane = elementsOf(x.shape) / C;
  const count = x.n * plane;
  const mean = new Float64Array(C);
  const biasedVar = new Float64Array(C);
  const unbiasedVar = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let sum = 0;
    for (let n = 0; n < x.n; n++) for (let i = 0; i < plane; i++) sum += x.data[(n * C + c) * plane + i];
    mean[c] = sum / count;
    let squares = 0;
    for (let n = 0; n < x.n; n++) for (let i = 0; i < plane; i++) squares += (x.data[(n * C + c) * plane + i] - mean[c]) ** 2;
    biasedVar[c] = squares / count;
    unbiasedVar[c] = count > 1 ? squares / (count - 1) : 0;
  }
  return { mean, biasedVar, unbiasedVar };
}

/** y = (x − mean[c]) / sqrt(var[c] + eps) · γ[c] + β[c]. */
export function normalize(x: Batch, mean: Float64Array, variance: Float64Array, eps: number, gamma: Float64Array, beta: Float64Array): Batch {
  const [C] = x.shape;
  const plane = elementsOf(x.shape) / C;
  const y = new Float64Array(x.data.length);
  for (let n = 0; n < x.n; n++)
    for (let c = 0; c < C; c++) {
      const scale = gamma[c] / Math.sqrt(variance[c] + eps);
      for (let i = 0; i < plane; i++) {
        const at = (n * C + c) * plane + i;
        y[at] = (x.data[at] - mean[c]) * scale + beta[c];
      }
    }
  return { n: x.n, shape: x.shape, data: y };
}

/** y = x·Wᵀ + b, W is out×in. */
export function linear(x: Batch, w: Float64Array, b: Float64Array | undefined, nOut: number): Batch {
  const nIn = elementsOf(x.shape);
  const y = new Float64Array(x.n * nOut);
  for (let n = 0; n < x.n; n++)
    for (let o = 0; o < nOut; o++) {
      let sum = b ? b[o] : 0;
      for (let i = 0; i < nIn; i++) sum += x.data[n * nIn + i] * w[o * nIn + i];
      y[n * nOut + o] = sum;
    }
  return { n: x.n, shape: [nOut], data: y };
}

export const relu = (x: Batch): Batch => ({ ...x, data: x.data.map((v) => (v > 0 ? v : 0)) });
export const tanh = (x: Batch): Batch => ({ ...x, data: x.data.map(Math.tanh) });
export const sigmoid = (x: Batch): Batch => ({ ...x, data: x.data.map((v) => 1 / (1 + Math.exp(-v))) });
/** nn.Threshold(th, v): y = x where x > th, else v. */
export const threshold = (x: Batch, a: ThresholdAttrs): Batch => ({ ...x, data: x.data.map((v) => (v > a.th ? v : a.v)) });

/**
 * nn.SpatialCrossMapLRN: y[c] = x[c]·(k + α/size·Σ x[j]²)^−β, the sum over the channels j from c − ⌊(size−1)/2⌋
 * to c + size − 1 − ⌊(size−1)/2⌋ that exist (for an odd size: the size channels centred on c).
 */
export function lrn(x: Batch, a: LrnAttrs): Batch {
  const [C] = x.shape;
  const plane = elementsOf(x.shape) / C;
  const before = Math.floor((a.size - 1) / 2);
  const y = new Float64Array(x.data.length);
  for (let n = 0; n < x.n; n++)
    for (let c = 0; c < C; c++)
      for (let i = 0; i < plane; i++) {
        let sum = 0;
        for (let j = Math.max(0, c - before); j <= Math.min(C - 1, c - before + a.size - 1); j++) sum += x.data[(n * C + j) * plane + i] ** 2;
        const at = (n * C + c) * plane + i;
        y[at] = x.data[at] * (a.k + (a.alpha / a.size) * sum) ** -a.beta;
      }
  return { n: x.n, shape: x.shape, data: y };
}

/** nn.SpatialZeroPadding(l, r, t, b): a zero border (negative: cropped), y[h][w] = x[h − t][w − l]. */
export function zeroPad(x: Batch, a: ZeroPadAttrs): Batch {
  const [C, H, W] = x.shape;
  const P = H + a.t + a.b;
  const Q = W + a.l + a.r;
  const y = new Float64Array(x.n * C * P * Q);
  for (let plane = 0; plane < x.n * C; plane++)
    for (let h = 0; h < P; h++)
      for (let w = 0; w < Q; w++) {
        const ih = h - a.t;
        const iw = w - a.l;
        if (ih >= 0 && ih < H && iw >= 0 && iw < W) y[(plane * P + h) * Q + w] = x.data[(plane * H + ih) * W + iw];
      }
  return { n: x.n, shape: [C, P, Q], data: y };
}

/** nn.CAddTable: the inputs' elementwise sum. */
export function add(inputs: readonly Batch[]): Batch {
  const data = new Float64Array(inputs[0].data.length);
  for (const x of inputs) x.data.forEach((v, i) => (data[i] += v));
  return { n: inputs[0].n, shape: inputs[0].shape, data };
}

/** nn.Concat(2): the inputs joined along channels, image by image. */
export function concat(inputs: readonly Batch[]): Batch {
  const per = inputs.map((x) => elementsOf(x.shape));
  const total = per.reduce((a, b) => a + b, 0);
  const data = new Float64Array(inputs[0].n * total);
  for (let n = 0; n < inputs[0].n; n++) {
    let at = n * total;
    inputs.forEach((x, k) => {
      data.set(x.data.subarray(n * per[k], (n + 1) * per[k]), at);
      at += per[k];
    });
  }
  return { n: inputs[0].n, shape: [inputs.reduce((c, x) => c + x.shape[0], 0), ...inputs[0].shape.slice(1)], data };
}

/** Log-softmax of each image's row, stabilised by the row maximum. */
export function logSoftmax(x: Batch): Batch {
  const F = elementsOf(x.shape);
  const y = new Float64Array(x.data.length);
  for (let n = 0; n < x.n; n++) {
    const row = x.data.subarray(n * F, (n + 1) * F);
    const max = Math.max(...row);
    const logSum = Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
    for (let f = 0; f < F; f++) y[n * F + f] = row[f] - max - logSum;
  }
  return { n: x.n, shape: x.shape, data: y };
}

export const softmax = (x: Batch): Batch => {
  const l = logSoftmax(x);
  return { ...l, data: l.data.map(Math.exp) };
};

/** Torch's nn.Dropout (v2) in training: kept units scaled by 1/(1−p). `keep` has one flag per element. */
export function dropout(x: Batch, p: number, keep: Uint8Array): Batch {
  if (keep.length !== x.data.length) throw new Error(`dropout mask has ${keep.length} flags for ${x.data.length} elements`);
  return { ...x, data: x.data.map((v, i) => (keep[i] ? v / (1 - p) : 0)) };
}

/** ClassNLLCriterion with sizeAverage: −(1/N) Σ logp[n][label[n]]. */
export function nllLoss(logp: Batch, labels: ArrayLike<number>): number {
  const F = elementsOf(logp.shape);
  let sum = 0;
  for (let n = 0; n < logp.n; n++) sum += logp.data[n * F + labels[n]];
  return -sum / logp.n;
}
