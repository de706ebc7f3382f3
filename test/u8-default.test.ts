// uint8 input by default (issue #20): train, eval and infer given a spec and image data build it to take uint8
// crops; --input f32 opts out; a model whose first layer is no conv falls back to float saying why; a float
// directory runs as float (test/imagenet-pack.test.ts); a float run's checkpoint resumes in a uint8 run; ONNX export
// ignores the input; a uint8 and a float32 build of one spec are different builds.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { readNpy } from '../runtime/io/npy.js';
import { packImageNet } from '../runtime/imagenet/pack.js';
import { nincc } from './cli-run.js';
import { makeImageNetFolder, type TestFolder } from './imagenet/make-folder.js';
import { EVAL_LOSS_GAP, TRAIN_LOSS_GAP } from './imagenet/loss-gaps.js';
import { TINY_IMAGE_SPEC } from './imagenet/tiny-spec.js';

const work = mkdtempSync(join(tmpdir(), 'nincc-u8-default-'));
// Specs are named relative to the working directory: the generated kernels name their spec file, so the same
// relative name in every test's directory keeps one kernel-cache entry per build (imagenet-train-cli and
// imagenet-pack build tiny.model the same way).
const spec = 'tiny.model';
const flatSpec = 'flat.model';
/** Where a spec given to a command is built: build/<model>[-u8] under the working directory. */
const u8Dir = join(work, 'build', 'tiny-u8');
const f32Dir = join(work, 'build', 'tiny');

/** A model whose first layer is no conv: it cannot take uint8 images (line 5 holds the view). */
const FLAT_SPEC = `# first layer not a conv
model flat {
  input 3x32x32
  imageSize 40
  view(-1)  linear(3072, 3)  logsoftmax
}
train { batch 4  epochs 1  epochSize 2  criterion nll  optimizer sgd { momentum 0.9 }  regime { epochs 1..1  lr 1e-2  wd 0 } }
`;

interface Row { epoch: number; loss: number; testLoss?: number }
const readLog = (run: string): Row[] => readFileSync(join(run, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Row);
const planOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as { imageInput?: { dtype: string; layout: string; mean: number[]; std: number[] } };
const run = (args: readonly string[], cwd = work) => nincc(args, { cwd });
const gap = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
const full = process.env.NINCC_TEST_FULL === '1';

describe('uint8 input by default for image data', () => {
  let made: TestFolder;
  let packed: string;
  const common = (data: string) => ['--data', data, '--epochs', '1', '--seed', '3', '--workers', '2', '-q'];

  beforeAll(async () => {
    made = await makeImageNetFolder(join(work, 'imagenet'));
    writeFileSync(join(work, spec), TINY_IMAGE_SPEC);
    writeFileSync(join(work, flatSpec), FLAT_SPEC);
    packed = join(work, 'packed');
    await packImageNet(made.root, packed, { imageSize: 40, quality: 90, shardBytes: 1 << 20, concurrency: 2 });
  }, 60_000);

  /** Trains the spec on `data` by default and with --input f32: the default is uint8, and the losses are the float run's. */
  const trainBothWays = (name: string, data: string) => {
    const u = run(['train', spec, ...common(data), '-o', join(work, `${name}-u8`)]);
    expect(u.code, u.stderr).toBe(0);
    expect(u.stderr).toContain('; uint8 crops, normalised by the first conv;');
    const f = run(['train', spec, ...common(data), '--input', 'f32', '-o', join(work, `${name}-f32`)]);
    expect(f.code, f.stderr).toBe(0);
    expect(f.stderr).toContain('; float32 crops;');
    const [lu] = readLog(join(work, `${name}-u8`));
    const [lf] = readLog(join(work, `${name}-f32`));
    process.stderr.write(`${name}: uint8 vs float32 crops: training loss gap ${gap(lu.loss, lf.loss).toExponential(2)}, test loss gap ${gap(lu.testLoss!, lf.testLoss!).toExponential(2)}\n`);
    expect(gap(lu.loss, lf.loss)).toBeLessThan(TRAIN_LOSS_GAP);
    expect(gap(lu.testLoss!, lf.testLoss!)).toBeLessThan(EVAL_LOSS_GAP);
  };

  it('trains a spec on an image folder with uint8 crops, to the float run\'s losses; --input f32 opts out', () => {
    trainBothWays('folder', made.root);
    expect(planOf(u8Dir).imageInput).toEqual({ dtype: 'u8', layout: 'nhwc', mean: [0.5, 0.45, 0.4], std: [0.25, 0.25, 0.25] });
    expect(planOf(f32Dir).imageInput).toBeUndefined();
  }, 180_000);

  // CI trains the folder both ways and evaluates the packed set both ways (below); the packed training pair is two more runs.
  it.runIf(full)('trains a spec on a packed set with uint8 crops, to the float run\'s losses (NINCC_TEST_FULL=1)', () => {
    trainBothWays('packed', packed);
  }, 180_000);

  it('evaluates and infers a spec on image data through a uint8 build; Fashion-MNIST and --npy stay float', () => {
    const weights = join(work, 'folder-f32', 'checkpoint.safetensors');
    const cwd = join(work, 'eval-cwd');
    mkdirSync(cwd, { recursive: true });
    writeFileSync(join(cwd, spec), TINY_IMAGE_SPEC);
    const e = run(['eval', spec, '--data', packed, '--weights', weights, '--json', '--workers', '2'], cwd);
    expect(e.code, e.stderr).toBe(0);
    expect(planOf(join(cwd, 'build', 'tiny-u8')).imageInput?.dtype).toBe('u8');
    expect(existsSync(join(cwd, 'build', 'tiny'))).toBe(false);
    const ef = run(['eval', spec, '--data', packed, '--weights', weights, '--json', '--workers', '2', '--input', 'f32'], cwd);
    expect(ef.code, ef.stderr).toBe(0);
    const [lu, lf] = [e, ef].map((r) => (JSON.parse(r.stdout) as { loss: number }).loss);
    expect(gap(lu, lf)).toBeLessThan(EVAL_LOSS_GAP);

    const image = made.good.val[0];
    const i8 = run(['infer', spec, image, '--weights', weights, '-o', join(work, 'u8.npy')], cwd);
    const i32 = run(['infer', spec, image, '--weights', weights, '--input', 'f32', '-o', join(work, 'f32.npy')], cwd);
    expect([i8.code, i32.code], i8.stderr + i32.stderr).toEqual([0, 0]);
    const [a, b] = [readNpy(join(work, 'u8.npy')).data, readNpy(join(work, 'f32.npy')).data] as Float32Array[];
    expect(Math.max(...Array.from(a, (v, k) => Math.abs(v - b[k])))).toBeLessThan(1e-3);
    expect(run(['infer', spec, '--npy', join(work, 'f32.npy'), '--input', 'u8'], cwd)).toMatchObject({ code: 2, stderr: expect.stringContaining('--input u8 applies to image files') });
    expect(run(['eval', spec, '--data', 'fashion-mnist', '--input', 'u8'], cwd)).toMatchObject({ code: 2, stderr: expect.stringContaining('Fashion-MNIST is read as floats') });
  }, 180_000);

  it('falls back to float for a model whose first layer is no conv, saying why; an explicit --input u8 is an error at that layer', () => {
    const r = run(['train', flatSpec, ...common(made.root), '--no-test', '--epoch-size', '1', '-o', join(work, 'flat')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.match(/^note: .*$/gm)).toEqual([`note: build/flat is built for float32 images: model flat cannot take uint8 images: its first layer is a view, not a conv: uint8 images are normalised by the first conv`]);
    expect(r.stderr).toContain('; float32 crops;');
    expect(planOf(join(work, 'build', 'flat')).imageInput).toBeUndefined();
    const u = run(['train', flatSpec, ...common(made.root), '--no-test', '--input', 'u8', '-o', join(work, 'flat-u8')]);
    expect(u.code).toBe(1);
    expect(u.stderr).toContain(`${flatSpec}:5:3: error E091: model flat cannot take uint8 images (--input u8): its first layer is a view, not a conv`);
    expect(existsSync(join(work, 'build', 'flat-u8'))).toBe(false);
  }, 120_000);

  // A float32 directory trained and evaluated on image data (run as float, said once): test/imagenet-pack.test.ts.
// Runs after the eval/infer test, whose f32.npy it reads.
  it('refuses an --input that disagrees with a built directory, and float32 data for a uint8 one', () => {
    expect(run(['train', f32Dir, ...common(made.root), '--input', 'u8'])).toMatchObject({ code: 2, stderr: expect.stringContaining(`${f32Dir} takes float32 images, not uint8: rebuild it from the spec with --input u8`) });
    expect(run(['eval', u8Dir, '--data', packed, '--input', 'f32'])).toMatchObject({ code: 2, stderr: expect.stringContaining(`${u8Dir} takes uint8 images (built with --input u8), not float32: rebuild it from the spec with --input f32`) });
    const floatData = (what: string) => `${u8Dir} takes uint8 images (built with --input u8), but ${what} is float32 N×C×H×W: give the spec, or a directory built without --input u8`;
    expect(run(['train', u8Dir, '--data', 'fashion-mnist'])).toMatchObject({ code: 2, stderr: expect.stringContaining(floatData('Fashion-MNIST')) });
    expect(run(['infer', u8Dir, '--npy', join(work, 'f32.npy')])).toMatchObject({ code: 2, stderr: expect.stringContaining(floatData('--npy')) });
  }, 60_000);

  it('resumes a float run\'s checkpoint in a uint8 run', () => {
    const runDir = join(work, 'resume');
    cpSync(join(work, 'folder-f32'), runDir, { recursive: true });
    const r = run(['train', spec, ...common(made.root), '--epochs', '2', '--resume', '-o', runDir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/resuming from .* after epoch 1/);
    expect(r.stderr).toContain('; uint8 crops, normalised by the first conv;');
    const log = readLog(runDir);
    expect(log.map((l) => l.epoch)).toEqual([1, 2]);
    expect(Number.isFinite(log[1].loss)).toBe(true);
  }, 120_000);

  it('builds a spec for uint8 and then float32 into one directory: a rebuild, not the other\'s cache entry', () => {
    const dir = join(work, 'same');
    const kinds = [['--input', 'u8'], []].map((input) => {
      const r = run(['build', spec, '-o', dir, ...input]);
      expect(r.code, r.stderr).toBe(0);
      const plan = planOf(dir) as { imageInput?: unknown; sourceHash: string };
      return { cached: / cached, /.test(r.stdout), u8: plan.imageInput !== undefined, hash: plan.sourceHash, kernels: readFileSync(join(dir, 'kernels.cpu.cc'), 'utf8') };
    });
    expect(kinds.map((k) => [k.cached, k.u8])).toEqual([[false, true], [false, false]]);
    expect(kinds[0].hash).not.toBe(kinds[1].hash);
    expect(kinds[0].kernels).not.toBe(kinds[1].kernels);
  }, 60_000);

  it('exports the same ONNX file from a uint8 and a float32 artifact of the same weights', () => {
    const weights = join(work, 'folder-u8', 'checkpoint.safetensors');
    const a = run(['export-onnx', u8Dir, '--weights', weights, '-o', join(work, 'u8.onnx')]);
    const b = run(['export-onnx', f32Dir, '--weights', weights, '-o', join(work, 'f32.onnx')]);
    expect([a.code, b.code], a.stderr + b.stderr).toEqual([0, 0]);
    expect(readFileSync(join(work, 'u8.onnx')).equals(readFileSync(join(work, 'f32.onnx')))).toBe(true);
  }, 60_000);
});
