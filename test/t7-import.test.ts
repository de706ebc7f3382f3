// `nincc import-t7`: linear_net.t7 reproduces linear_y.t7; NIN-like files from the test writer in every
// layout Torch saved (getParameters storages, cudnn, SpatialConvolutionMM 2-D weights, version-1 BN,
// nesting, Double tensors, strided views) import and infer like the float64 reference; exact errors; --print.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readT7File } from '../runtime/t7/reader.js';
import { T7Object, T7Table, T7Tensor, type T7Value } from '../runtime/t7/values.js';
import { load } from '../runtime/model.js';
import { buildSpec, expectClose, removeBuilds, rng, uniform, type Built } from './reference/artifacts.js';
import { importT7 } from './t7/run-import.js';
import { publishedFile, randomWeights, referenceForward, torchNetwork, versionOneWeights, type TorchNetOptions } from './t7/torch-nets.js';
import { floatTensor, list, object, table, writeT7 } from './t7/writer.js';

const scratch = mkdtempSync(join(tmpdir(), 'nincc-t7-import-'));
const save = (name: string, text: string | Uint8Array) => {
  const file = join(scratch, name);
  writeFileSync(file, text);
  return file;
};

afterAll(() => removeBuilds());

describe('linear_net.t7 through import-t7', () => {
  it('applied to linear_x.t7 gives linear_y.t7', async () => {
    // The spec language's input is always CxHxW, so the spec flattens first; the file's nn.Linear takes the vector.
    const source = 'model linear_t7 {\n  input 3x1x1\n  view(-1)  linear(3, 2)\n}\n';
    const spec = save('linear.model', source);
    const weights = join(scratch, 'linear.safetensors');
    const r = importT7(['test/data/t7/linear_net.t7', '--spec', spec, '-o', weights]);
    expect(r.stderr).toBe(`note: the spec's layer 1 (${spec}:3:3) view(-1) has no module in the file: the file's network takes the flattened input\n`);
    expect(r.stdout).toBe(`wrote ${weights}: 2 tensors (8 floats) for linear_t7 from 1 modules of test/data/t7/linear_net.t7\n`);
    expect(r.code).toBe(0);
    const built = buildSpec('linear_t7', source, 1);
    const model = await load(built.dir, { device: 'cpu', weights });
    try {
      const x = (readT7File('test/data/t7/linear_x.t7') as T7Tensor).toFloat32();
      const y = (readT7File('test/data/t7/linear_y.t7') as T7Tensor).toFloat32();
      expect(Array.from(await model.infer(x))).toEqual(Array.from(y));
    } finally {
      model.dispose();
    }
  });
});

// NIN's structure (conv→bn→relu blocks, both pools, view, linear, logsoftmax) at a small odd size.
const SMALL = `model nin_t7_small {
  input 3x35x33
  transform { mean 0.5 0.4 0.3  std 0.2 0.25 0.3 }
  def block(nip, nop, kw, kh, dw, dh, pw, ph) {
    conv(nip, nop, kw, kh, dw, dh, pw, ph)  bn(nop, 1e-3)  relu
    conv(nop, nop, 1, 1)                    bn(nop, 1e-3)  relu
  }
  block(3, 6, 5, 5, 2, 2, 2, 2)   maxpool(3, 3, 2, 2, 1, 1)
  block(6, 10, 3, 3, 1, 1, 1, 1)  avgpool(3, 3, 2, 2, 1, 1)
  view(-1)  linear(250, 7)  logsoftmax
}
`;
const smallTransform = { mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] };

describe('NIN-like files in every layout Torch saved', () => {
  let built: Built;
  let spec: string;
  let weights: Map<string, Float64Array>;
  let images: Float32Array;
  let reference: Float64Array;
  const n = 2;
  beforeAll(() => {
    spec = save('small.model', SMALL);
    built = buildSpec('nin_t7_small', SMALL, n);
    const next = rng(7);
    weights = randomWeights(built.model, next);
    images = uniform(n * 3 * 35 * 33, -1.5, 1.5, next);
    reference = referenceForward(built.model, weights, images, n, next); // calibrates the running statistics
  });

  /** Writes the network, imports it, loads the checkpoint and returns the CLI result and the inference output. */
  async function importAndInfer(name: string, options: TorchNetOptions, wrap: (net: T7Object) => T7Value = (net) => publishedFile(net, smallTransform)) {
    const file = save(`${name}.t7`, writeT7(wrap(torchNetwork(built.model, weights, options))));
    const out = join(scratch, `${name}.safetensors`);
    const r = importT7([file, '--spec', spec, '-o', out]);
    expect(r.stderr.startsWith('nincc') ? r.stderr : '').toBe('');
    expect(r.code).toBe(0);
    const model = await load(built.dir, { device: 'cpu', weights: out });
    try {
      return { r, file, output: await model.infer(images) };
    } finally {
      model.dispose();
    }
  }

  it('published layout: {model, transform, unpack}, parameters in getParameters() storages, no LogSoftMax at the end', async () => {
    const { r, file, output } = await importAndInfer('flat', { flatParameters: true, omitLast: 1 });
    expect(r.stderr).toBe(`note: the file's network ends after module (16); the spec's parameter-free layer 17 (${spec}:10:29) logsoftmax is not in the file\n`);
    expect(r.stdout).toBe(`wrote ${join(scratch, 'flat.safetensors')}: 26 tensors (3,043 floats) for nin_t7_small from 16 modules of ${file}\n`);
    expectClose(output, reference, 1e-5, 'flat getParameters() layout');
  });

  it('cudnn.* classes, version-1 BN (running_std), nested Sequentials, CudaTensors', async () => {
    const { r, output } = await importAndInfer('cudnn-v1-nested', { cudnn: true, bnVersion: 1, nest: true });
    expect(r.stderr).toBe("note: the file's network nests nn.Sequentials; their 17 modules are matched in order to the spec's flat layer list\n");
    // Torch's version-1 BN normalised with (x − mean)·running_std: the reference with var = std^-2 − eps.
    const v1 = referenceForward(built.model, versionOneWeights(built.model, weights), images, n);
    expectClose(output, v1, 1e-5, 'cudnn, BN v1, nested');
  });

  it('nn.SpatialConvolutionMM with 2-D weights, Double tensors, a transposed (strided) Linear weight, nn.View(250), the bare network', async () => {
    const { r, output } = await importAndInfer('mm-double', { convolutionMM: true, convWeights2d: true, dtype: 'float64', transposedLinear: true, viewSize: [250] }, (net) => net);
    expect(r.stderr).toBe('');
    expectClose(output, reference, 1e-5, 'MM, 2-D weights, Double');
  });

  it('a table with modules and a transform that differs from the spec: a warning', async () => {
    const wrap = (net: T7Object) => table({ modules: net.get('modules')!, transform: table({ mean: floatTensor([0.485, 0.456, 0.406], [3]), std: list([0.2, 0.25, 0.3]) }) });
    const { r, output } = await importAndInfer('modules-table', {}, wrap);
    expect(r.stderr).toBe(`warning: the file's transform.mean {${Math.fround(0.485)}, ${Math.fround(0.456)}, ${Math.fround(0.406)}} differs from the spec's {0.5, 0.4, 0.3}: nincc normalises with the spec's\n`);
    expectClose(output, reference, 1e-5, 'modules table');
  });

  describe('mismatches are exact errors (exit 1)', () => {
    /** Imports a file whose network is the small one with `edit` applied to its modules table. */
    function importEdited(name: string, edit: (modules: T7Table) => void, options: TorchNetOptions = {}) {
      const net = torchNetwork(built.model, weights, options);
      edit(net.get('modules') as T7Table);
      const file = save(`${name}.t7`, writeT7(publishedFile(net, smallTransform)));
      const r = importT7([file, '--spec', spec, '-o', join(scratch, `${name}.safetensors`)]);
      expect(r.stdout).toBe('');
      expect(r.code).toBe(1);
      return r.stderr.replace(`nincc import-t7: ${file}: `, '');
    }
    const conv = (nIn: number, nOut: number, k: number, extra: Record<string, T7Value> = {}) =>
      object('nn.SpatialConvolution', { nInputPlane: nIn, nOutputPlane: nOut, kW: k, kH: k, dW: 1, dH: 1, padW: 0, padH: 0, weight: floatTensor(new Float32Array(nOut * nIn * k * k), [nOut, nIn, k, k]), bias: floatTensor(new Float32Array(nOut), [nOut]), ...extra });

    it('a conv with other sizes, naming the spec line and the def call it came from', () => {
      expect(importEdited('conv', (m) => m.entries.set(4, conv(6, 8, 1)))).toBe(
        `module (4) is nn.SpatialConvolution(6 -> 8, 1x1) but the spec's layer 4 (${spec}:6:5) is conv(6, 6, 1, 1)\n  in block(3, 6, …) at ${spec}:8:3\n`,
      );
    });

    it('another kind of module', () => {
      expect(importEdited('kind', (m) => m.entries.set(3, object('nn.PReLU', {})))).toBe(
        `module (3) is nn.PReLU but the spec's layer 3 (${spec}:5:60) is relu (nincc has no layer for nn.PReLU)\n  in block(3, 6, …) at ${spec}:8:3\n`,
      );
      expect(importEdited('tanh', (m) => m.entries.set(3, object('cudnn.Tanh', {})))).toBe(
        `module (3) is cudnn.Tanh but the spec's layer 3 (${spec}:5:60) is relu\n  in block(3, 6, …) at ${spec}:8:3\n`,
      );
    });

    it('a BN with another eps', () => {
      const edit = (m: T7Table) => (m.get(2) as T7Object).fields.entries.set('eps', 1e-5);
      expect(importEdited('eps', edit)).toBe(`module (2) is nn.SpatialBatchNormalization(6) but the spec's layer 2 (${spec}:5:45) is bn(6, 0.001)\n  in block(3, 6, …) at ${spec}:8:3\n`);
    });

    it('a ceil-mode pool that pools to another size', () => {
      const edit = (m: T7Table) => (m.get(7) as T7Object).fields.entries.set('ceil_mode', true);
      expect(importEdited('ceil', edit)).toBe(`module (7) is nn.SpatialMaxPooling(3,3,2,2,1,1):ceil() but the spec's layer 7 (${spec}:8:35) is maxpool(3, 3, 2, 2, 1, 1) (ceil mode pools 18x17 to 10x9, the spec's floor mode to 9x9)\n`);
    });

    it('a weight whose shape contradicts the module fields', () => {
      const edit = (m: T7Table) => (m.get(1) as T7Object).fields.entries.set('weight', floatTensor(new Float32Array(6 * 3 * 5 * 4), [6, 3, 5, 4]));
      expect(importEdited('shape', edit)).toBe('module (1) (nn.SpatialConvolution(3 -> 6, 5x5, 2,2, 2,2)) has weight 6x3x5x4, expected 6x3x5x5 or 6x75\n');
    });

    it('a module past the spec\'s last layer', () => {
      expect(importEdited('extra', (m) => m.entries.set(18, object('nn.SoftMax', {})))).toBe(`module (18) is nn.SoftMax but the spec nin_t7_small ends at layer 17 (${spec}:10:29) logsoftmax\n`);
    });

    it('a file that ends before a layer with weights', () => {
      expect(importEdited('short', () => {}, { omitLast: 2 })).toBe(`the file's network ends after module (15) but the spec's layer 16 (${spec}:10:13) linear(250, 7) has weights\n`);
    });

    it('no network in the file', () => {
      const file = save('no-net.t7', writeT7(table({ epoch: 3, optimState: table({}) })));
      const r = importT7([file, '--spec', spec, '-o', join(scratch, 'x.safetensors')]);
      expect([r.code, r.stderr]).toEqual([1, `nincc import-t7: ${file}: no network found: the file holds a table of 2 entries with keys epoch, optimState (expected an nn module, a table whose model field is one, or a table with modules)\n`]);
    });
  });

  it('a truncated file and a corrupt one: exit 1 with the byte offset and the field path', () => {
    const bytes = writeT7(publishedFile(torchNetwork(built.model, weights, {}), smallTransform));
    const file = save('truncated.t7', bytes.subarray(0, bytes.length - 10));
    const r = importT7([file, '--spec', spec, '-o', join(scratch, 'x.safetensors')]);
    expect(r.code).toBe(1);
    // The file ends with transform.std[3] = 0.3: its tag is at length − 12, of which the cut leaves 2 bytes.
    expect(r.stderr).toBe(`nincc import-t7: ${file}: truncated at byte ${bytes.length - 12} while reading transform.std[3] (needs 4 bytes, 2 left)\n`);
    const garbage = save('garbage.t7', 'not a torch file at all');
    const g = importT7([garbage, '--spec', spec, '-o', join(scratch, 'x.safetensors')]);
    expect([g.code, g.stderr]).toEqual([1, `nincc import-t7: ${garbage}: unknown type tag 544501614 at byte 0 while reading the top-level object (corrupt file, or not a Torch7 binary file)\n`]);
  });

  it('--print: the file\'s network in Torch\'s format, nested Sequentials indented, cudnn class names kept', () => {
    const file = save('print.t7', writeT7(publishedFile(torchNetwork(built.model, weights, { cudnn: true, nest: true }))));
    const r = importT7([file, '--print']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      [
        'nn.Sequential {',
        '  [input -> (1) -> (2) -> (3) -> (4) -> (5) -> output]',
        '  (1): nn.Sequential {',
        '    [input -> (1) -> (2) -> (3) -> (4) -> (5) -> (6) -> (7) -> output]',
        '    (1): cudnn.SpatialConvolution(3 -> 6, 5x5, 2,2, 2,2)',
        '    (2): cudnn.SpatialBatchNormalization',
        '    (3): cudnn.ReLU',
        '    (4): cudnn.SpatialConvolution(6 -> 6, 1x1)',
        '    (5): cudnn.SpatialBatchNormalization',
        '    (6): cudnn.ReLU',
        '    (7): cudnn.SpatialMaxPooling(3,3,2,2,1,1)',
        '  }',
        '  (2): nn.Sequential {',
        '    [input -> (1) -> (2) -> (3) -> (4) -> (5) -> (6) -> (7) -> output]',
        '    (1): cudnn.SpatialConvolution(6 -> 10, 3x3, 1,1, 1,1)',
        '    (2): cudnn.SpatialBatchNormalization',
        '    (3): cudnn.ReLU',
        '    (4): cudnn.SpatialConvolution(10 -> 10, 1x1)',
        '    (5): cudnn.SpatialBatchNormalization',
        '    (6): cudnn.ReLU',
        '    (7): cudnn.SpatialAveragePooling(3,3,2,2,1,1)',
        '  }',
        '  (3): nn.View(-1)',
        '  (4): nn.Linear(250 -> 7)',
        '  (5): cudnn.LogSoftMax',
        '}',
        '',
      ].join('\n'),
    );
    // --print of a file that is a single module; and of test/data/t7/linear_net.t7.
    expect(importT7(['test/data/t7/linear_net.t7', '--print']).stdout).toBe('nn.Linear(3 -> 2)\n');
  });

  it('usage errors exit 2', () => {
    expect(importT7(['test/data/t7/linear_net.t7', '-o', 'x.safetensors'])).toMatchObject({ code: 2, stderr: `nincc import-t7: --spec or --write-spec is required\nusage: nincc import-t7 FILE.t7 (--spec SPEC | --write-spec OUT.model --input CxHxW [--name NAME]) -o OUT.safetensors [--print]\n` });
    expect(importT7(['test/data/t7/linear_net.t7', '--spec', spec])).toMatchObject({ code: 2, stderr: `nincc import-t7: -o is required\nusage: nincc import-t7 FILE.t7 (--spec SPEC | --write-spec OUT.model --input CxHxW [--name NAME]) -o OUT.safetensors [--print]\n` });
    expect(importT7(['missing.t7', '--print'])).toMatchObject({ code: 2, stderr: 'nincc import-t7: missing.t7: no such file\n' });
  });
});
