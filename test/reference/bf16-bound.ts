// The float64 reference of the bf16 tensor-core conv gradient tests: each value with a bound on |emu − value|,
// propagated per element by the rules stated in test/emu-conv-mma-grad.test.ts's header (conv sums, ReLU, the loss).

export const U = 2 ** -24;
export const BF16 = 2 ** -8;
export const gamma = (n: number) => (n * U) / (1 - n * U);
export const SOFTMAX_SLACK = 2 ** -18;
const TINY = 2 ** -48;
/** Every conv's weight-gradient splits in these tests: compiler/lower/train-fused.ts wgradSplits is at most the batch (maxBatch 4). */
export const SPLITS = 4;

export interface Conv {
  readonly C: number; readonly H: number; readonly W: number; readonly K: number; readonly R: number; readonly S: number;
  readonly sh: number; readonly sw: number; readonly ph: number; readonly pw: number;
}
export const outSize = (c: Conv) => ({ P: Math.floor((c.H + 2 * c.ph - c.R) / c.sh) + 1, Q: Math.floor((c.W + 2 * c.pw - c.S) / c.sw) + 1 });
export const convCall = (c: Conv) => `conv(${c.C}, ${c.K}, ${c.S}, ${c.R}, ${c.sw}, ${c.sh}, ${c.pw}, ${c.ph})`;

/** A tensor in float64 with the bound E on |emu − v| per element. */
export interface Bounded {
  readonly v: Float64Array;
  readonly e: Float64Array;
  readonly exact?: boolean; // every element is a bf16 value, the same on both devices (the images, rounded())
}

/** x rounded to the nearest bf16 (ties to even), as a float32. */
export function bf16(x: number): number {
  const bits = new Uint32Array(Float32Array.of(x).buffer);
  bits[0] = (bits[0] + 0x7fff + ((bits[0] >>> 16) & 1)) & 0xffff0000;
  return new Float32Array(bits.buffer)[0];
}

/**
 * What a kernel stages of x: each element rounded to bf16, as a bf16 value the same on both devices
 * (`exact`) off by E' from the float64 one. Rounding is monotone, so the device's value lies between the
 * roundings of v − E and v + E: the same value (E' = 0) wherever no rounding boundary lies within E of v.
 */
export function rounded(x: Bounded): Bounded {
  const v = x.v.map(bf16);
  return { v, e: v.map((r, i) => Math.max(bf16(x.v[i] + x.e[i]) - r, r - bf16(x.v[i] - x.e[i]))), exact: true };
}

/** Sparse bright pixels (share `bright`) on a dim ground, bf16 values: a window's sum depends on how many it holds, so outputs spread widely. */
export const sparseImages = (count: number, bright: number, next: () => number) =>
  Float32Array.from({ length: count }, () => (next() < bright ? 1 + 2 * next() : 0.05 * next())).map(bf16);

/** Calls f(inAt, outAt, tapWeightAt) for every (image, k, p, q, c, r, s) whose tap lies inside the input. */
export function eachTap(c: Conv, n: number, f: (xAt: number, yAt: number, wAt: number) => void): void {
  const { P, Q } = outSize(c);
  for (let img = 0; img < n; img++)
    for (let k = 0; k < c.K; k++)
      for (let p = 0; p < P; p++)
        for (let q = 0; q < Q; q++)
          for (let ch = 0; ch < c.C; ch++)
            for (let r = 0; r < c.R; r++)
              for (let s = 0; s < c.S; s++) {
                const h = p * c.sh - c.ph + r, u = q * c.sw - c.pw + s;
                if (h < 0 || h >= c.H || u < 0 || u >= c.W) continue;
                f(((img * c.C + ch) * c.H + h) * c.W + u, ((img * c.K + k) * P + p) * Q + q, ((k * c.C + ch) * c.R + r) * c.S + s);
              }
}

/** Rounding of each operand to bf16: δ, or 0 for the tensors the test makes bf16-exact (weights, images). */
export interface Rounding {
  readonly a: number;
  readonly b: number;
}
export const EXACT = 0;

/** E of a bf16 tensor-core sum (the header's first rule, with each operand's own δ). */
export function sumBound(T: number, S: number, terms: number, d: Rounding, bias = 0): number {
  const both = (1 + d.a) * (1 + d.b);
  return (both - 1) * T + both * S + gamma(terms + 1) * (both * (T + S) + Math.abs(bias));
}

/** `wDelta`: the weights' rounding as the kernel stages them (EXACT for bf16 test weights; an inference fold's are not). */
export function forward(c: Conv, n: number, x: Bounded, w: Float64Array, b: Float64Array, wDelta: number = EXACT): Bounded {
  const { P, Q } = outSize(c);
  const y = new Float64Array(n * c.K * P * Q), T = new Float64Array(y.length), S = new Float64Array(y.length);
  eachTap(c, n, (xa, ya, wa) => {
    y[ya] += x.v[xa] * w[wa];
    T[ya] += Math.abs(x.v[xa] * w[wa]);
    S[ya] += x.e[xa] * Math.abs(w[wa]);
  });
  const plane = P * Q;
  const k = (i: number) => Math.floor(i / plane) % c.K;
  return { v: y.map((v, i) => v + b[k(i)]), e: T.map((t, i) => sumBound(t, S[i], c.C * c.R * c.S, { a: x.exact ? EXACT : BF16, b: wDelta }, b[k(i)])) };
}

export function dgrad(c: Conv, n: number, dy: Bounded, w: Float64Array): Bounded {
  const dx = new Float64Array(n * c.C * c.H * c.W), T = new Float64Array(dx.length), S = new Float64Array(dx.length);
  eachTap(c, n, (xa, ya, wa) => {
    dx[xa] += dy.v[ya] * w[wa];
    T[xa] += Math.abs(dy.v[ya] * w[wa]);
    S[xa] += dy.e[ya] * Math.abs(w[wa]);
  });
  return { v: dx, e: T.map((t, i) => sumBound(t, S[i], c.K * c.R * c.S, { a: dy.exact ? EXACT : BF16, b: EXACT })) };
}

export function wgrad(c: Conv, n: number, dy: Bounded, x: Bounded): { dw: Bounded; db: Bounded } {
  const { P, Q } = outSize(c);
  const count = c.K * c.C * c.R * c.S;
  const dw = new Float64Array(count), T = new Float64Array(count), S = new Float64Array(count);
  eachTap(c, n, (xa, ya, wa) => {
    dw[wa] += dy.v[ya] * x.v[xa];
    T[wa] += Math.abs(dy.v[ya] * x.v[xa]);
    S[wa] += dy.e[ya] * Math.abs(x.v[xa]) + Math.abs(dy.v[ya]) * x.e[xa] + dy.e[ya] * x.e[xa];
  });
  const terms = n * P * Q + SPLITS;
  const db = new Float64Array(c.K), dbAbs = new Float64Array(c.K), dbS = new Float64Array(c.K);
  for (let i = 0; i < dy.v.length; i++) {
    const k = Math.floor(i / (P * Q)) % c.K;
    db[k] += dy.v[i];
    dbAbs[k] += Math.abs(dy.v[i]);
    dbS[k] += dy.e[i];
  }
  return {
    dw: { v: dw, e: T.map((t, i) => sumBound(t, S[i], terms, { a: dy.exact ? EXACT : BF16, b: x.exact ? EXACT : BF16 })) },
    db: { v: db, e: dbAbs.map((a, k) => dbS[k] + gamma(terms) * (a + dbS[k])) },
  };
}

/** ReLU keeps a bf16 value a bf16 value (`exact` stays). */
export const relu = (y: Bounded): Bounded => ({ ...y, v: y.v.map((v) => Math.max(v, 0)) });

/** The gradient of ReLU's input from that of its output, given the ReLU's input y (the header's mask rule). */
export function reluBackward(y: Bounded, dy: Bounded): Bounded {
  const v = new Float64Array(dy.v.length), e = new Float64Array(dy.v.length);
  for (let i = 0; i < v.length; i++) {
    if (y.v[i] > y.e[i]) [v[i], e[i]] = [dy.v[i], dy.e[i]];
    else if (y.v[i] < -y.e[i]) [v[i], e[i]] = [0, 0];
    else [v[i], e[i]] = [dy.v[i] / 2, Math.abs(dy.v[i]) / 2 + dy.e[i]];
  }
  return { v, e };
}

/**
 * The linear layer that makes the loss gradient exact: 2⁻⁴⁸·(−u) for class 0 (every label) and 2⁻⁴⁸·u for
 * the others, u ∈ [0.5, 1], so every logit is its bias exactly and the gradient reaching the convs is
 * positive; the bias in [0.5, 1].
 */
export function exactLossLinear(classes: number, features: number, next: () => number): { weight: Float32Array; bias: Float32Array } {
  const weight = Float32Array.from({ length: classes * features }, (_, i) => TINY * (i < features ? -1 : 1) * (0.5 + 0.5 * next()));
  return { weight, bias: Float32Array.from({ length: classes }, () => 0.5 + 0.5 * next()) };
}

/**
 * The gradient reaching the last conv: W_linᵀ·(softmax(b) − onehot)/n, the logits being b exactly. The
 * device's linear data gradient (compiler/backends/cuda/dense-mma.ts) is a bf16 tensor-core sum over the
 * classes: both operands rounded to bf16, the softmax's fp32 slack carried into it (sumBound).
 */
export function lossGradient(n: number, labels: Int32Array, wl: Float64Array, bl: Float64Array, features: number): Bounded {
  const m = Math.max(...bl);
  const z = Array.from(bl, (b) => Math.exp(b - m));
  const p = z.map((v) => v / z.reduce((s, x) => s + x, 0));
  const v = new Float64Array(n * features), e = new Float64Array(v.length);
  for (let img = 0; img < n; img++)
    for (let f = 0; f < features; f++) {
      let sum = 0, abs = 0, wAbs = 0;
      for (let j = 0; j < bl.length; j++) {
        const g = (p[j] - (labels[img] === j ? 1 : 0)) / n;
        sum += wl[j * features + f] * g;
        abs += Math.abs(wl[j * features + f] * g);
        wAbs += Math.abs(wl[j * features + f]);
      }
      v[img * features + f] = sum;
      e[img * features + f] = sumBound(abs, (wAbs * SOFTMAX_SLACK) / n, bl.length, { a: BF16, b: BF16 });
    }
  return { v, e };
}

/** The largest |emu − float64| / E (≤ 1 passes) and where. */
export function worst(emu: ArrayLike<number>, exact: ArrayLike<number>, bound: ArrayLike<number>): { ratio: number; at: number } {
  let ratio = 0, at = -1;
  for (let i = 0; i < bound.length; i++) {
    const r = Math.abs(emu[i] - exact[i]) / (bound[i] + 1e-40);
    if (!(r <= ratio)) [ratio, at] = [r, i];
  }
  return { ratio, at };
}

/** What chainWeights needs of a test's chain: its convs in order, the layers a ReLU follows, and the linear layer after them. */
export interface Chain {
  readonly convs: readonly (readonly [string, Conv])[];
  /** each conv's bias pulls its channel's mean output down by this fraction */
  readonly biasPull: Readonly<Record<string, number>>;
  readonly reluAfter: ReadonlySet<string>;
  readonly linear: string;
  readonly classes: number;
  readonly features: number;
}

/**
 * A chain's test weights, the same on every device. All positive, as are the images, so no sum cancels and the
 * worst-case bound stays within a few bf16 roundings of the value through the chain (with random signs a
 * sum is much smaller than Σ|a·b|, and the bound, which must cover the worst case, grows by that ratio per
 * layer). Each conv's bias is minus biasPull times its channel's mean output, so the ReLUs do drop values
 * and the data-gradient kernels' dReLU prologue matters. The linear layer: exactLossLinear (the gradient
 * reaching the convs is positive too).
 */
export function chainWeights(chain: Chain, images: Float32Array, n: number, next: () => number): Map<string, Float32Array> {
  const tensors = new Map<string, Float32Array>();
  let x: Bounded = { v: Float64Array.from(images), e: new Float64Array(images.length), exact: true };
  for (const [name, c] of chain.convs) {
    const taps = c.C * c.R * c.S;
    // uniform in [0.1, 2]/taps, rounded to fp32 and then to bf16 (test/reference/artifacts.ts uniform, then bf16)
    const w = Float32Array.from({ length: c.K * taps }, () => bf16(Math.fround(0.1 / taps + (2 / taps - 0.1 / taps) * next())));
    const y = forward(c, n, x, Float64Array.from(w), new Float64Array(c.K));
    const { P, Q } = outSize(c);
    const b = Float32Array.from({ length: c.K }, (_, k) => {
      let sum = 0;
      for (let img = 0; img < n; img++) for (let i = 0; i < P * Q; i++) sum += y.v[(img * c.K + k) * P * Q + i];
      return (-chain.biasPull[name] * sum) / (n * P * Q) + 0.05 * next();
    });
    tensors.set(`${name}.weight`, w).set(`${name}.bias`, b);
    const out = forward(c, n, x, Float64Array.from(w), Float64Array.from(b));
    x = chain.reluAfter.has(name) ? relu(out) : out;
  }
  const linear = exactLossLinear(chain.classes, chain.features, next);
  tensors.set(`${chain.linear}.weight`, linear.weight).set(`${chain.linear}.bias`, linear.bias);
  return tensors;
}

/** One conv of a chain in float64 with bounds: its output y, the gradient g of its output (after the ReLU's mask), and its weight and bias gradients. */
export interface ConvReference {
  readonly y: Bounded;
  readonly g: Bounded;
  readonly dw: Bounded;
  readonly db: Bounded;
}

/**
 * The chain's step in float64 with each value's bound, from the tensors `w` the devices hold: the forward through
 * the convs (a ReLU after those in reluAfter), the linear layer's exact-loss gradient, and back through each conv's
 * data and weight gradients. Keyed by conv name, in the chain's order. Each conv but the last is read only by
 * the next (through its ReLU), so it stores y rounded to bf16 (compiler/lower/train-fused.ts bf16ConvOut): its
 * `y` is the stored value (rounded()), which the next conv stages as it is and the ReLU's mask is taken from.
 */
export function chainReference(chain: Chain, n: number, images: Float32Array, labels: Int32Array, w: (name: string) => Float64Array): Map<string, ConvReference> {
  const inputs: Bounded[] = [];
  const outputs: Bounded[] = [];
  let x: Bounded = { v: Float64Array.from(images), e: new Float64Array(images.length), exact: true };
  for (const [name, c] of chain.convs) {
    inputs.push(x);
    const sum = forward(c, n, x, w(`${name}.weight`), w(`${name}.bias`));
    const y = outputs.length < chain.convs.length - 1 ? rounded(sum) : sum;
    outputs.push(y);
    x = chain.reluAfter.has(name) ? relu(y) : y;
  }
  const out = new Map<string, ConvReference>();
  let g = lossGradient(n, labels, w(`${chain.linear}.weight`), w(`${chain.linear}.bias`), chain.features);
  for (let i = chain.convs.length - 1; i >= 0; i--) {
    const [name, c] = chain.convs[i];
    const y = outputs[i];
    const gy = chain.reluAfter.has(name) ? reluBackward(y, g) : g;
    out.set(name, { y, g: gy, ...wgrad(c, n, gy, inputs[i]) });
    if (i > 0) g = dgrad(c, n, gy, w(`${name}.weight`));
  }
  return new Map(chain.convs.map(([name]) => [name, out.get(name)!]));
}

