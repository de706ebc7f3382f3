// The cpuNamedPaths ablation (compiler/ablations.ts): by default the generated cpu library's conv calls name, as template
// arguments, the algorithms their shape can take (conv.h packed_forward_paths, data_gradient_paths, weight_gradient_paths;
// conv_winograd.h's kinds), so that g++ compiles those alone, not every algorithm the run-time dispatch names. Off, the
// calls are as before. CI: the generated text, NIN's, differing in those template arguments alone. NINCC_TEST_FULL=1:
// both libraries of a small training spec, whose named one leaves the algorithms it never calls out of its symbols and
// computes bitwise what the other does (inference, a step's every gradient, and two SGD steps).
import { mkdtempSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildArtifact } from '../compiler/build.js';
import { compileSpec } from '../compiler/pipeline.js';
import { load } from '../runtime/model.js';
import { compiledNin } from './cpu-nin-compiled.js';
import { randomImages, randomLabels, rng } from './reference/artifacts.js';
import { withEnv } from './reference/env.js';

const FULL = process.env.NINCC_TEST_FULL === '1';
if (!FULL) console.warn('test/cpu-named-paths.test.ts: the two library builds and their comparison run with NINCC_TEST_FULL=1; CI checks the generated calls');

/** The named calls' template arguments, taken out: what the calls were without them. */
const unnamed = (text: string) =>
  text
    .replace(/<(?:packed_forward_paths|data_gradient_paths)\(Conv2dShape\{[^}]*\}\)>\(/g, '(')
    .replace(/conv2d_backward_weights<true, weight_gradient_paths\(Conv2dShape\{[^}]*\}, \d+\)>\(/g, 'conv2d_backward_weights(')
    .replace(/conv2d_backward_weights<false, weight_gradient_paths\(Conv2dShape\{[^}]*\}, \d+\)>\(/g, 'conv2d_backward_weights<false>(')
    .replace(/(conv2d_forward_winograd_training|conv2d_forward_winograd|pack_winograd_weights)<(WinogradKind::\w+)>\(/g, '$1($2, ');

describe('cpuNamedPaths: the generated calls', () => {
  it("NIN's conv calls name their paths and Winograd kinds; off, they do not, and nothing else differs", () => {
    const on = compiledNin().cpu.text, off = compiledNin({ cpuNamedPaths: false }).cpu.text;
    const count = (text: string, re: RegExp) => (text.match(re) ?? []).length;
    // NIN's 12 convs: 11 data gradients (the stem has none) and 12 weight gradients, named; the 96→96 1x1s' inference forwards
    // below batch 2 the pointwise direct conv or the GEMM; the 5x5 forward and data gradient Winograd F(2x2,5x5).
    expect(count(on, /conv2d_backward_data<data_gradient_paths\(Conv2dShape\{1, /g)).toBe(11);
    expect(count(on, /conv2d_backward_weights<true, weight_gradient_paths\(Conv2dShape\{1, /g)).toBe(12);
    expect(on).toContain('conv2d_forward<packed_forward_paths(Conv2dShape{1, 96, 56, 56, 96, 1, 1, 1, 1, 0, 0})>(shape, ');
    expect(on).toContain('conv2d_forward_winograd_training<WinogradKind::F2x5>(shape, ');
    expect(on).toContain('pack_winograd_weights<WinogradKind::F4x3>(shape, ');
    expect(off).not.toMatch(/_paths\(|<WinogradKind::/);
    expect(unnamed(on)).toBe(off);
  });
});

describe.runIf(FULL)('cpuNamedPaths: the libraries (NINCC_TEST_FULL=1)', () => {
  // A strided 3x3 on 2 channels (the stem weight gradient), a 3x3 stride-1 conv of 32 channels (Winograd F(2x2,3x3)
  // gradients) and a 1x1 on 16-pixel planes (not whole tiles: the GEMM's weight gradient, not the 1x1 form's).
  const SPEC = `model named_paths {
  input 2x8x8
  conv(2, 32, 3, 3, 2, 2, 1, 1)  bn(32)  relu
  conv(32, 32, 3, 3, 1, 1, 1, 1)  bn(32)  relu
  conv(32, 8, 1, 1)  relu
  view(-1)  linear(128, 5)  logsoftmax
}
`;
  const root = mkdtempSync(join(tmpdir(), 'nincc-named-paths-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('the named library leaves out the algorithms the plan never calls, and computes bitwise what the unnamed one does', async () => {
    const model = compileSpec(SPEC, 'named_paths.model').model!;
    const dirs = { on: join(root, 'on'), off: join(root, 'off') };
    // Their own cache: the symbols below are those of a library compiled from this source.
    withEnv({ NINCC_CACHE_DIR: join(root, 'cache'), NINCC_NVCC: '0' }, () => {
      buildArtifact(model, SPEC, { outDir: dirs.on, target: 'cpu', maxBatch: 4 });
      buildArtifact(model, SPEC, { outDir: dirs.off, target: 'cpu', maxBatch: 4, ablations: { cpuNamedPaths: false } });
    });
    const symbols = (dir: string) => spawnSync('nm', ['-C', join(dir, 'kernels.cpu.so')], { encoding: 'utf8' }).stdout;
    const [on, off] = [symbols(dirs.on), symbols(dirs.off)];
    // Both have what the plan calls: Winograd F(2x2,3x3), the stem's weight gradient. The unnamed library also has what
    // its dispatchers name and g++ could not rule out (F(2x2,5x5), the 1x1 weight gradient, the pointwise direct conv;
    // F(4x4,3x3) it could: the gradients' kind is 3 or 5); the named one has none of them.
    for (const taken of ['Transform<2, 3>', 'conv2d_backward_weights_stem']) {
      expect(on, taken).toContain(taken);
      expect(off, taken).toContain(taken);
    }
    for (const left of ['Transform<2, 5>', 'conv2d_backward_weights_1x1', 'conv2d_forward_pointwise_direct']) {
      expect(off, left).toContain(left);
      expect(on, left).not.toContain(left);
    }
    expect(on).not.toContain('Transform<4, 3>');
    const next = rng(41);
    const images = randomImages(model, 3, next), labels = randomLabels(model, 3, next);
    const [a, b] = await Promise.all([dirs.on, dirs.off].map((d) => load(d, { device: 'cpu', seed: 42 })));
    try {
      expect(Array.from(await a.infer(images))).toEqual(Array.from(await b.infer(images)));
      const [ra, rb] = [await a.forwardBackward(images, labels), await b.forwardBackward(images, labels)];
      expect(ra.loss).toBe(rb.loss);
      for (const t of a.info.params) expect(Array.from(a.getGradient(t.name)), t.name).toEqual(Array.from(b.getGradient(t.name)));
      for (const m of [a, b]) for (let step = 0; step < 2; step++) await m.trainStep(images, labels, { lr: 0.05, weightDecay: 5e-4, momentum: 0.9 });
      for (const t of a.tensorNames()) expect(Array.from(a.getTensor(t)), t).toEqual(Array.from(b.getTensor(t)));
      expect(Array.from(await a.infer(images))).toEqual(Array.from(await b.infer(images)));
    } finally {
      a.dispose();
      b.dispose();
    }
  }, 900_000);
});
