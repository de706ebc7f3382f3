// A new user's first program against the installed tarball (test/package-install.test.ts): build a
// spec, train one step, infer, save. Type-checked strictly with the package's own declarations.
import { writeFile } from 'node:fs/promises';
import { build, isNinccError, load, type Model, type TrainStepOptions } from 'nincc';

await writeFile('tiny.model', `model tiny {
  input 1x4x4
  conv(1, 2, 3, 3, 1, 1, 1, 1) relu
  view(-1) linear(32, 3) logsoftmax
}
`);
const built = await build('tiny.model', { outDir: 'build/tiny', maxBatch: 2 });
const model: Model = await load(built.dir, { seed: 1 });
const images = new Float32Array(2 * 16).fill(0.25);
const options: TrainStepOptions = { lr: 0.1 };
const { loss } = await model.trainStep(images, [0, 2], options);
const out = await model.infer(images);
await model.save('tiny.safetensors');
await model.dispose();
const refused = await model.infer(images).catch((e: unknown) => (isNinccError(e) ? e.code : 'not a nincc error'));
process.stdout.write(JSON.stringify({ loss, outputs: out.length, refused }) + '\n');
