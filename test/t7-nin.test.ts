// Full-size NIN: files laid out like the published nin_nobn_final.t7 and nin_bn_final.t7 (random weights, written
// by the test writer) import into models/nin-nobn.model and models/nin.model; --print gives the seed's printouts,
// and one 224×224 image through the imported weights matches the float64 reference forward.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ShapedModel } from '../compiler/ir.js';
import { load } from '../runtime/model.js';
import { root } from './cli-run.js';
import { buildSpec, expectClose, removeBuilds, rng, uniform } from './reference/artifacts.js';
import { importT7 } from './t7/run-import.js';
import { publishedFile, randomWeights, referenceForward, torchNetwork, type TorchNetOptions } from './t7/torch-nets.js';
import { writeT7 } from './t7/writer.js';

const scratch = mkdtempSync(join(tmpdir(), 'nincc-t7-nin-'));
const seed = (name: string) => readFileSync(`${root}test/golden/${name}`, 'utf8');
const spread = (v: Float64Array) => Math.max(...v) - Math.min(...v);
const moduleLines = (text: string) => text.split('\n').filter((l) => /^ {2}\(\d+\): /.test(l));

afterAll(() => removeBuilds());

/** Builds the spec (max batch 1), writes a Torch file of random weights for it, imports it and infers one image. */
async function importFullSize(specFile: string, name: string, options: TorchNetOptions) {
  const source = readFileSync(join(root, specFile), 'utf8');
  const built = buildSpec(name, source, 1);
  const model: ShapedModel = built.model;
  const next = rng(11);
  const weights = randomWeights(model, next);
  const image = uniform(3 * 224 * 224, -1.5, 1.5, next);
  const reference = referenceForward(model, weights, image, 1, next); // calibrates BN running statistics
  const file = join(scratch, `${name}.t7`);
  writeFileSync(file, writeT7(publishedFile(torchNetwork(model, weights, options), model.transform)));
  const out = join(scratch, `${name}.safetensors`);
  const r = importT7([file, '--spec', specFile, '-o', out, '--print']);
  expect(r.code, r.stderr).toBe(0);
  const m = await load(built.dir, { device: 'cpu', weights: out });
  try {
    return { r, output: await m.infer(image), reference };
  } finally {
    m.dispose();
  }
}

describe('full-size NIN files', () => {
  it('nin_nobn_final layout (getParameters() storages, transform, unpack function) into models/nin-nobn.model', async () => {
    const { r, output, reference } = await importFullSize('models/nin-nobn.model', 'nin_nobn_t7', { flatParameters: true });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`${seed('nin-nobn.seed.txt').trimEnd()}\nwrote ${join(scratch, 'nin_nobn_t7.safetensors')}: 26 tensors (8,644,776 floats) for nin_nobn from 30 modules of ${join(scratch, 'nin_nobn_t7.t7')}\n`);
    expect(spread(reference), 'a reference that is not flat').toBeGreaterThan(1);
    expectClose(output, reference, 1e-5, 'NIN without BN, 224x224');
  });

  it('nin_bn_final layout (42 modules, no LogSoftMax) into models/nin.model', async () => {
    const { r, output, reference } = await importFullSize('models/nin.model', 'nin_bn_t7', { omitLast: 1 });
    expect(r.stderr).toBe("note: the file's network ends after module (42); the spec's parameter-free layer 43 (models/nin.model:20:54) logsoftmax is not in the file\n");
    expect(moduleLines(r.stdout)).toEqual(moduleLines(seed('nin-bn.seed.txt')));
    expect(spread(reference), 'a reference that is not flat').toBeGreaterThan(1);
    expectClose(output, reference, 1e-5, 'NIN with BN, 224x224');
  });
});
