// The uint8 stem (issue #20 acceptance 3): an artifact built with `input: 'u8'` takes N×H×W×C bytes and its
// first conv normalises them, (v/255 − mean)/std, while loading, forward and weight gradient. The float path
// is fed the loader's float crops of the same bytes (cropToTensor). Checked on cpu and emu against:
// - the float64 reference interpreter fed those floats (test/reference/interpret.ts): the training-mode
//   output and loss and the inference output within 1e-5 relative (float32 kernels against float64), and every
//   parameter's gradient at sampled elements against central differences of its loss (reference/gradients.ts);
// - each other: the cpu and emu u8 gradients, whole tensors, within 1e-5 relative;
// - NINCC_TEST_FULL=1 (two more builds): the float artifacts of the same spec, which the u8 path must equal bit
//   for bit on each device (the stem reads exactly the loader's floats; u8_input.h, backends/cuda/conv.ts).
// The stem is 3×3, stride 2, padding 1 on a 3×13×11 image (odd sizes), followed by a BN (the inference fold
// and the training statistics epilogue take the u8 stem's output) and a stride-1 conv. CI builds two
// artifacts (cpu u8, emu u8).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildArtifact, type Target } from '../compiler/build.js';
import type { ShapedModel } from '../compiler/ir.js';
import { compileModel, compileSpec } from '../compiler/pipeline.js';
import { load, type Model } from '../runtime/model.js';
import { cropToBytes, cropToTensor } from '../runtime/imagenet/donkey.js';
import { openImageNetFolder } from '../runtime/imagenet/folder.js';
import { imageInput, openImageSources, type ImageSources } from '../runtime/imagenet/model-input.js';
import { collect, collectBytes, normaliseBytes } from './imagenet/collect.js';
import { makeImageNetFolder } from './imagenet/make-folder.js';
import { TINY_IMAGE_SPEC } from './imagenet/tiny-spec.js';
import { nincc } from './cli-run.js';
import { expectClose, randomizeAffine, readWeights, rng } from './reference/artifacts.js';
import { checkGradients } from './reference/gradients.js';
import { forward, trainLoss, trainLossFrom } from './reference/interpret.js';
import { withEnv } from './reference/env.js';

const MEAN = [0.48462227599918, 0.45624044862054, 0.40588363755159];
const STD = [0.22889466674951, 0.22446679341259, 0.22495548344775];
const [C, H, W] = [3, 13, 11];
const N = 4;
const SPEC = `model u8stem {
  input ${C}x${H}x${W}
  transform { mean ${MEAN.join(' ')}
              std  ${STD.join(' ')} }
  conv(3, 6, 3, 3, 2, 2, 1, 1)  bn(6)  relu
  conv(6, 5, 1, 1, 1, 1, 0, 0)  relu
  view(-1)  linear(210, 4)  logsoftmax
}`;
const RTOL = 1e-5;
const full = Boolean(process.env.NINCC_TEST_FULL);

/** N random images as NHWC bytes, and the float path's NCHW batch of the same pixels (the loader's cropToTensor). */
function batch(seed: number): { bytes: Uint8Array; floats: Float32Array } {
  const next = rng(seed);
  const bytes = Uint8Array.from({ length: N * H * W * C }, () => Math.floor(next() * 256));
  const floats = new Float32Array(N * C * H * W);
  const size = { width: W, height: H, channels: C };
  for (let i = 0; i < N; i++) {
    cropToTensor(bytes.subarray(i * H * W * C), size, size, { x: 0, y: 0, flip: false }, { mean: MEAN, std: STD }, floats.subarray(i * C * H * W));
  }
  return { bytes, floats };
}

let root = '';
let model: ShapedModel;
const dirs: Record<string, string> = {};
const models: Model[] = [];

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'nincc-u8-stem-'));
  const r = compileSpec(SPEC, 'u8stem.model');
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('\n'));
  model = r.model;
  const build = (name: string, target: Target, input?: 'u8') => {
    dirs[name] = join(root, name);
    withEnv({ NINCC_NVCC: '0' }, () => buildArtifact(model, SPEC, { outDir: dirs[name], target, maxBatch: N, ...(input ? { input } : {}), ...(target === 'emu' ? { withoutCpuLibrary: true } : {}) }));
  };
  build('cpuU8', 'cpu', 'u8');
  build('emuU8', 'emu', 'u8');
  if (full) {
    build('cpuFloat', 'cpu');
    build('emuFloat', 'emu');
  }
}, 600_000);

afterAll(async () => {
  for (const m of models) await m.dispose();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Every model starts from the same tensors: the first one's, BN's β and γ made non-trivial (taken before it trains). */
let initial: ReadonlyMap<string, Float32Array> | undefined;
async function open(name: string, device: 'cpu' | 'emu'): Promise<Model> {
  const m = await load(dirs[name], { device, seed: 5 });
  models.push(m);
  if (!initial) {
    randomizeAffine(m, rng(7));
    initial = new Map(m.tensorNames().map((t) => [t, m.getTensor(t)]));
  } else for (const [t, v] of initial) m.setTensor(t, v);
  return m;
}

interface Pass {
  readonly output: Float32Array;
  readonly loss: number;
  readonly gradients: ReadonlyMap<string, Float32Array>;
  readonly infer: Float32Array;
}

/** One inference and one forward+backward of the batch (inference first: the BN's running statistics as set); every parameter's gradient. */
async function run(m: Model, images: Float32Array | Uint8Array, labels: Int32Array): Promise<Pass> {
  const infer = await m.infer(images);
  const { output, loss } = await m.forwardBackward(images, labels);
  const gradients = new Map(m.info.params.map((t) => [t.name, m.getGradient(t.name)]));
  return { output, loss, gradients, infer };
}

describe('uint8 stem: the first conv normalises uint8 NHWC images', () => {
  const labels = Int32Array.from([0, 3, 1, 2]);
  const passes = new Map<string, Pass>();

  for (const device of ['cpu', 'emu'] as const) {
    it(`${device}: the training output, loss, gradients and inference are the float path's`, async () => {
      const m = await open(`${device}U8`, device);
      const { bytes, floats } = batch(1);
      const w = readWeights(m);
      const got = await run(m, bytes, labels);
      passes.set(device, got);
      const train = forward(model, w, floats, N, { mode: 'train' }).output.data;
      expectClose(got.output, train, RTOL, `${device} u8 training output`);
      expectClose([got.loss], [trainLoss(model, w, floats, labels)], RTOL, `${device} u8 loss`);
      expectClose(got.infer, forward(model, w, floats, N, { mode: 'eval' }).output.data, RTOL, `${device} u8 inference`);
      const checked = checkGradients(m, trainLossFrom(model, w, floats, labels), 40, rng(3), `${device} u8`);
      expect(checked).toBeGreaterThan(100);
      if (device === 'emu') {
        for (const [t, g] of passes.get('cpu')!.gradients) expectClose(got.gradients.get(t)!, g, RTOL, `emu u8 gradient of ${t} against cpu u8`);
      }
      if (!full) return;
      const float = await run(await open(`${device}Float`, device), floats, labels);
      expect(Array.from(got.output), `${device}: u8 output = float output`).toEqual(Array.from(float.output));
      expect(got.loss).toBe(float.loss);
      expect(Array.from(got.infer), `${device}: u8 inference = float inference`).toEqual(Array.from(float.infer));
      for (const [t, g] of float.gradients) expect(Array.from(got.gradients.get(t)!), `${device}: u8 gradient of ${t} = float`).toEqual(Array.from(g));
    }, 300_000);
  }

  it('at bf16 the stem stays on the fp32 kernels, reading bytes, and report.txt says so', () => {
    const c = compileModel(model, { target: 'emu', maxBatch: N, sourceHash: '', libraries: {}, cpuFeatures: [], precision: 'bf16', input: 'u8' });
    const kernels = c.cuda!.kernels.filter((k) => /^k[14]_conv_(infer|fwd_fused|wgrad_fused)$/.test(k.name));
    expect(kernels.map((k) => `${k.name} ${k.tile && !k.tile.includes('fp32 SIMT') ? 'mma' : 'fp32'} ${k.params.includes('const unsigned char* x') ? 'u8' : 'f32'}`)).toEqual([
      'k1_conv_infer fp32 u8', 'k4_conv_infer mma f32', 'k1_conv_fwd_fused fp32 u8', 'k4_conv_fwd_fused mma f32', 'k4_conv_wgrad_fused mma f32', 'k1_conv_wgrad_fused fp32 u8',
    ]);
    expect(readFileSync(join(dirs.cpuU8, 'report.txt'), 'utf8')).toContain(`Input: uint8 N×H×W×C images, normalised by the first conv while loading (mean ${MEAN.join(' ')}, std ${STD.join(' ')})`);
  });

  it('refuses a float batch, a wrong size and a model whose first layer is no conv, naming what it wants', async () => {
    const u8 = models.find((m) => m.plan.imageInput && m.device === 'cpu') ?? (await open('cpuU8', 'cpu'));
    expect(u8.plan.imageInput).toEqual({ dtype: 'u8', layout: 'nhwc', mean: MEAN, std: STD });
    await expect(u8.infer(new Float32Array(C * H * W))).rejects.toThrow(/takes uint8 images .* pass a Uint8Array \(N×13×11×3, NHWC\), got Float32Array\(429\)/);
    await expect(u8.infer(new Uint8Array(C * H * W + 1))).rejects.toThrow(/430 bytes, not a whole number of 13×11×3 images \(429 bytes each\)/);
    const r = compileSpec('model m { input 3x5x5  view(-1)  linear(75, 2)  logsoftmax }', 'm.model');
    expect(() => buildArtifact(r.model!, '', { outDir: join(root, 'bad'), target: 'cpu', input: 'u8' })).toThrow(/^m\.model:1:24: model m cannot take uint8 images \(--input u8\): its first layer is a view, not a conv/);
  });
});

describe('cropToBytes: the loader crop as uint8 NHWC', () => {
  it('normalised per channel, equals cropToTensor of the same crop and flip', () => {
    const next = rng(9);
    const image = { width: 17, height: 12, channels: 3 };
    const pixels = Uint8Array.from({ length: 17 * 12 * 3 }, () => Math.floor(next() * 256));
    const crop = { width: 9, height: 7, channels: 3 };
    for (const placement of [{ x: 0, y: 0, flip: false }, { x: 5, y: 3, flip: true }, { x: 8, y: 5, flip: false }]) {
      const bytes = new Uint8Array(9 * 7 * 3);
      cropToBytes(pixels, image, crop, placement, bytes);
      const floats = new Float32Array(9 * 7 * 3);
      cropToTensor(pixels, image, crop, placement, { mean: MEAN, std: STD }, floats);
      const normalised = new Float32Array(floats.length);
      for (let c = 0; c < 3; c++) for (let p = 0; p < 63; p++) normalised[c * 63 + p] = (bytes[p * 3 + c] / 255 - MEAN[c]) / STD[c];
      expect(Array.from(normalised), JSON.stringify(placement)).toEqual(Array.from(floats));
    }
  });
});

describe('the image loader for a uint8 model', () => {
  const opened: ImageSources[] = [];
  afterAll(() => Promise.all(opened.map((s) => s.pool.close())));

  it('decodes the same crops and flips as bytes: normalised, the float batches bit for bit (training and validation)', async () => {
    const made = await makeImageNetFolder(join(root, 'imagenet'));
    const folder = openImageNetFolder(made.root);
    const open = (u8: boolean) => {
      const g = imageInput([3, 24, 20], 32, { mean: MEAN, std: STD }, u8 ? { dtype: 'u8' } : undefined);
      const s = openImageSources(g, folder, { workers: 2, prefetch: 1, sampling: 'balanced', epochSize: 2 });
      opened.push(s);
      return { g, s };
    };
    const float = open(false);
    const bytes = open(true);
    expect(bytes.g.output).toBe('u8');
    const a = await collect(float.s.train!.batches(1, 4, 3));
    const b = await collectBytes(bytes.s.train!.batches(1, 4, 3));
    expect(b.labels).toEqual(a.labels);
    b.images.forEach((x, i) => expect(Array.from(normaliseBytes(x, bytes.g.crop, { mean: MEAN, std: STD })), `training batch ${i}`).toEqual(Array.from(a.images[i])));
    const va = await collect(float.s.val.batches(4));
    const vb = await collectBytes(bytes.s.val.batches(4));
    expect(vb.labels).toEqual(va.labels);
    vb.images.forEach((x, i) => expect(Array.from(normaliseBytes(x, bytes.g.crop, { mean: MEAN, std: STD })), `validation batch ${i}`).toEqual(Array.from(va.images[i])));
  }, 60_000);
});

// NINCC_TEST_FULL=1 (two more cpu builds): the whole command line, float and uint8, on the same folder and seed.
describe.runIf(full)('nincc train/eval --input u8 on an image folder', () => {
  it('trains and evaluates with the same losses and weights as the float path, bit for bit (cpu)', async () => {
    const made = await makeImageNetFolder(join(root, 'cli-imagenet'));
    writeFileSync(join(root, 'tiny.model'), TINY_IMAGE_SPEC);
    const logs: string[] = [];
    for (const input of ['f32', 'u8']) {
      const r = nincc(['train', 'tiny.model', '--data', made.root, '--input', input, '-o', `run-${input}`, '--workers', '1', '-q'], { cwd: root, timeoutMs: 600_000 });
      expect(r.code, r.stderr).toBe(0);
      logs.push(readFileSync(join(root, `run-${input}`, 'log.jsonl'), 'utf8').replace(/"(imagesPerSecond|seconds|evalSeconds)":[\d.e+-]+/g, ''));
    }
    expect(logs[1]).toEqual(logs[0]);
    expect(readFileSync(join(root, 'run-u8', 'checkpoint.safetensors'))).toEqual(readFileSync(join(root, 'run-f32', 'checkpoint.safetensors')));
    const evals = ['build/tiny', 'build/tiny-u8'].map((a) => nincc(['eval', a, '--data', made.root, '--weights', 'run-u8/checkpoint.safetensors', '--json'], { cwd: root }).stdout);
    expect(JSON.parse(evals[1])).toEqual(JSON.parse(evals[0]));
  }, 900_000);
});
