// The emu training step of test/reference/specs.ts ADD_IN_NEXT_CONV with residual-add switches on, against the same
// spec's cpu build and the emu build with them off (test/emu-add-in-next-conv.test.ts, emu-add-bwd-in-dgrad.test.ts):
// as close to cpu as emu is (fp32), and bitwise the switch-off build (gradients, SGD steps, inference), on a poisoned
// arena. A bf16 build (the tensor-core kernels) is compared with its switch-off build only: its distance from cpu is
// bf16 rounding's, bounded by the tensor-core tests, and the same in both builds when they are bitwise equal.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { buildArtifact } from '../../compiler/build.js';
import { compileSpec } from '../../compiler/pipeline.js';
import type { Ablations } from '../../compiler/ablations.js';
import { load } from '../../runtime/model.js';
import { expectClose, expectGradientsClose, poisonArena, randomImages, randomizeAffine, randomLabels, rng } from './artifacts.js';
import { buildEmuVariants } from './emu-variants.js';
import { withEnv } from './env.js';
import { expectSameGradients, expectSameSteps } from './same-training.js';
import { ADD_IN_NEXT_CONV } from './specs.js';

const FILE = 'add_in_next_conv.model';
const TOL = 2e-5; // as test/emu-blocks-train.test.ts
const GRAD_TOL = 1e-4;

/** `what` names the switches in a failure; a buffer the switch-on kernels should have written but did not reads as NaN. */
export async function expectAddSwitchesStep(on: Ablations, off: Ablations, what: string, precision: 'fp32' | 'bf16' = 'fp32'): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'nincc-add-in-conv-'));
  const builds = buildEmuVariants(ADD_IN_NEXT_CONV, FILE, { on, off }, {}, precision);
  const model = compileSpec(ADD_IN_NEXT_CONV, FILE, { device: 'cpu' }).model!;
  const cpuDir = join(root, 'cpu');
  withEnv({ NINCC_NVCC: '0' }, () => buildArtifact(model, ADD_IN_NEXT_CONV, { outDir: cpuDir, target: 'cpu', maxBatch: 4 }));
  const [a, b, cpu] = await Promise.all([load(builds.dirs.on, { device: 'emu', seed: 5 }), load(builds.dirs.off, { device: 'emu', seed: 5 }), load(cpuDir, { device: 'cpu', seed: 5 })]);
  try {
    const next = rng(5);
    randomizeAffine(cpu, next);
    for (const t of cpu.tensorNames()) a.setTensor(t, cpu.getTensor(t));
    const images = randomImages(model, 3, next);
    const labels = randomLabels(model, 3, next);
    poisonArena(a, Number.NaN, precision === 'fp32');  // bf16: its tickets in the fixed space start at zero
    if (precision === 'fp32') {
      const want = await cpu.forwardBackward(images, labels);
      const got = await a.forwardBackward(images, labels);
      expectClose(got.output, want.output, TOL, `output, emu with ${what} against cpu`);
      expectGradientsClose(a, cpu, GRAD_TOL, `emu with ${what} against cpu`);
    }
    const grads = await expectSameGradients(a, b, images, labels);
    expect(grads.length).toBeGreaterThan(20);
    await expectSameSteps(a, b, images, labels, 3);
  } finally {
    for (const m of [a, b, cpu]) m.dispose();
    builds.remove();
    rmSync(root, { recursive: true, force: true });
  }
}
