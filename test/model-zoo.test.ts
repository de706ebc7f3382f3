// Torch7's ImageNet zoo in the spec language (issue #17, front end): the shipped models' parameter and MAC
// totals against the published figures, Torch's print(model) of residual and inception blocks line for line,
// the ceil-mode pool rule, and the one guard that stops a build of what lowering does not take yet.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { poolOutputSize } from '../compiler/front/infer-shapes.js';
import { analyzeSpec, compileSpec } from '../compiler/pipeline.js';
import { torchPrint } from '../compiler/report/torch-print.js';
import { nincc } from './cli-run.js';
import { reportOnly } from './reference/report-only.js';

const work = mkdtempSync(join(tmpdir(), 'nincc-zoo-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Totals { params: number; macs: number }
const totals = (model: string): Totals => {
  const r = nincc(['inspect', '--json', `models/${model}.model`]);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { totals: Totals }).totals;
};
const within = (actual: number, published: number, fraction: number) => Math.abs(actual - published) / published <= fraction;

describe('the shipped ImageNet models: nincc inspect --json totals (acceptance 1)', () => {
  it('ResNet-18: 11,689,512 parameters (fb.resnet.torch, torchvision)', () => {
    expect(totals('resnet-18').params).toBe(11_689_512);
  });

  it('ResNet-50: 25,557,032 parameters and about 4.1 GMAC at 224x224 (within 1%)', () => {
    const t = totals('resnet-50');
    expect(t.params).toBe(25_557_032);
    expect(within(t.macs, 4.1e9, 0.01), `${t.macs}`).toBe(true);
  });

  it('VGG-16: 138,357,544 parameters and about 15.5 GMAC (within 1%), the MACs a hand count', () => {
    const t = totals('vgg-16');
    expect(t.params).toBe(138_357_544);
    expect(within(t.macs, 15.5e9, 0.01), `${t.macs}`).toBe(true);
    // 3x3 convolutions: 9·Cin·Cout·H·W at each resolution, then the three linear layers.
    const stages: [number, number, number][][] = [
      [[3, 64, 224], [64, 64, 224]],
      [[64, 128, 112], [128, 128, 112]],
      [[128, 256, 56], [256, 256, 56], [256, 256, 56]],
      [[256, 512, 28], [512, 512, 28], [512, 512, 28]],
      [[512, 512, 14], [512, 512, 14], [512, 512, 14]],
    ];
    const convs = stages.flat().reduce((t, [i, o, s]) => t + 9 * i * o * s * s, 0);
    expect(t.macs).toBe(convs + 25088 * 4096 + 4096 * 4096 + 4096 * 1000);
  });

  it('AlexNet-OWT: 61,100,840 parameters', () => {
    expect(totals('alexnet-owt').params).toBe(61_100_840);
  });

  it('OverFeat (fast, at 224x224): the parameters a hand count', () => {
    const conv = (i: number, o: number, k: number) => o * i * k * k + o;
    const linear = (i: number, o: number) => i * o + o;
    const hand = conv(3, 96, 11) + conv(96, 256, 5) + conv(256, 512, 3) + conv(512, 1024, 3) + conv(1024, 1024, 3) + linear(1024 * 5 * 5, 3072) + linear(3072, 4096) + linear(4096, 1000);
    expect(totals('overfeat').params).toBe(hand);
  });

  it("GoogLeNet: the stages' planes and sizes, and the main and auxiliary classifiers joined into 2 x 1000 outputs", () => {
    const r = nincc(['inspect', '--json', 'models/googlenet.model']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { layers: { index: number; path?: string; torch: string; output: number[] }[] };
    const merges = j.layers.filter((l) => l.torch === 'nn.Concat').map((l) => `${l.path ?? l.index} ${l.output.join('x')}`);
    // 3(a) 3(b) 3(c), 4(a)-4(d); inside the splitter's branch 1: 4(e), 5(a), 5(b); the splitter last.
    expect(merges).toEqual([
      '9 256x28x28', '10 320x28x28', '11 576x28x28',
      '13 576x14x14', '14 576x14x14', '15 576x14x14', '16 576x14x14',
      '17.1.1 1024x14x14', '17.1.3 1024x7x7', '17.1.4 1024x7x7',
      '17 2000',
    ]);
  });

  it('nincc check accepts each of them', () => {
    for (const m of ['alexnet-owt', 'vgg-16', 'resnet-18', 'resnet-50', 'googlenet', 'overfeat']) {
      const r = nincc(['check', `models/${m}.model`]);
      expect(r.code, r.stderr).toBe(0);
    }
  });
});

const printed = (source: string) => {
  const r = analyzeSpec(source, 'print.model');
  expect(r.diagnostics).toEqual([]);
  return torchPrint(r.network!.nodes);
};

describe("Torch7's print(model) of blocks (acceptance 2)", () => {
  it('a residual block with a projection shortcut: nn.ConcatTable, then nn.CAddTable, as fb.resnet.torch builds it', () => {
    const source = `model block {
  input 64x56x56
  residual {
    branch { conv(64, 128, 3, 3, 2, 2, 1, 1):noBias() bn(128) relu conv(128, 128, 3, 3, 1, 1, 1, 1):noBias() bn(128) }
    branch { conv(64, 128, 1, 1, 2, 2):noBias() bn(128) }
  }
  relu
}
`;
    expect(printed(source)).toBe(`nn.Sequential {
  [input -> (1) -> (2) -> (3) -> output]
  (1): nn.ConcatTable {
    input
      |\`-> (1): nn.Sequential {
      |      [input -> (1) -> (2) -> (3) -> (4) -> (5) -> output]
      |      (1): nn.SpatialConvolution(64 -> 128, 3x3, 2,2, 1,1) without bias
      |      (2): nn.SpatialBatchNormalization
      |      (3): nn.ReLU
      |      (4): nn.SpatialConvolution(128 -> 128, 3x3, 1,1, 1,1) without bias
      |      (5): nn.SpatialBatchNormalization
      |    }
       \`-> (2): nn.Sequential {
             [input -> (1) -> (2) -> output]
             (1): nn.SpatialConvolution(64 -> 128, 1x1, 2,2) without bias
             (2): nn.SpatialBatchNormalization
           }
       ... -> output
  }
  (2): nn.CAddTable
  (3): nn.ReLU
}`);
  });

  it('an inception block: nn.Concat, a one-module branch printed bare, the last branch with `->', () => {
    const source = `model inception {
  input 192x28x28
  concat {
    branch { conv(192, 64, 1, 1) }
    branch { conv(192, 96, 1, 1) relu conv(96, 128, 3, 3, 1, 1, 1, 1) relu }
    branch { maxpool(3, 3, 1, 1, 1, 1) conv(192, 32, 1, 1) relu }
  }
}
`;
    expect(printed(source)).toBe(`nn.Sequential {
  [input -> (1) -> output]
  (1): nn.Concat {
    input
      |\`-> (1): nn.SpatialConvolution(192 -> 64, 1x1)
      |\`-> (2): nn.Sequential {
      |      [input -> (1) -> (2) -> (3) -> (4) -> output]
      |      (1): nn.SpatialConvolution(192 -> 96, 1x1)
      |      (2): nn.ReLU
      |      (3): nn.SpatialConvolution(96 -> 128, 3x3, 1,1, 1,1)
      |      (4): nn.ReLU
      |    }
       \`-> (3): nn.Sequential {
             [input -> (1) -> (2) -> (3) -> output]
             (1): nn.SpatialMaxPooling(3,3,1,1,1,1)
             (2): nn.SpatialConvolution(192 -> 32, 1x1)
             (3): nn.ReLU
           }
       ... -> output
  }
}`);
  });

  it('nested: a residual block inside a depthconcat branch is an nn.Sequential of its two modules', () => {
    const source = `model nested {
  input 8x4x4
  depthconcat {
    branch { residual { branch { identity } branch { relu } } }
    branch { identity }
  }
}
`;
    expect(printed(source)).toBe(`nn.Sequential {
  [input -> (1) -> output]
  (1): nn.DepthConcat {
    input
      |\`-> (1): nn.Sequential {
      |      [input -> (1) -> (2) -> output]
      |      (1): nn.ConcatTable {
      |        input
      |          |\`-> (1): nn.Identity
      |           \`-> (2): nn.ReLU
      |           ... -> output
      |      }
      |      (2): nn.CAddTable
      |    }
       \`-> (2): nn.Identity
       ... -> output
  }
}`);
  });

  it('nincc inspect prints the tree and numbers the layers inside blocks by their Torch module path', () => {
    const r = nincc(['inspect', '--json', 'models/resnet-18.model']);
    expect(r.code, r.stderr).toBe(0);
    const layers = (JSON.parse(r.stdout) as { layers: { index: number; path?: string; torch: string; output: number[] }[] }).layers;
    // (1)-(4): conv, bn, relu, maxpool; (5): the first block's ConcatTable, whose branch 1 is a Sequential.
    expect(layers[4]).toMatchObject({ path: '5.1.1', torch: 'nn.SpatialConvolution(64 -> 64, 3x3, 1,1, 1,1) without bias', output: [64, 56, 56] });
    expect(layers[9]).toMatchObject({ path: '5.2', torch: 'nn.Identity' });
    expect(layers[10]).toMatchObject({ index: 6, torch: 'nn.CAddTable', output: [64, 56, 56] });
    expect(layers[10].path).toBeUndefined();
    const text = nincc(['inspect', 'models/resnet-18.model']).stdout;
    expect(text).toContain('  (5): nn.ConcatTable {\n    input\n      |`-> (1): nn.Sequential {');
  });
});

describe('merging branches', () => {
  const outputs = (source: string) => {
    const r = analyzeSpec(source, 'm.model');
    expect(r.diagnostics).toEqual([]);
    return r.network!.nodes.map((n) => n.output.join('x'));
  };

  it('depthconcat sums the channels and takes the largest height and width (smaller maps are centred in it)', () => {
    expect(outputs('model m {\n  input 4x8x8\n  depthconcat {\n    branch { conv(4, 2, 3, 3) }\n    branch { identity }\n    branch { maxpool(2, 2) }\n  }\n}\n')).toEqual(['10x8x8']);
  });

  it('a block counts its branches\' parameters and MACs; the merge itself has none', () => {
    const r = analyzeSpec('model m {\n  input 4x8x8\n  residual {\n    branch { conv(4, 4, 1, 1) }\n    branch { conv(4, 4, 1, 1):noBias() }\n  }\n}\n', 'm.model');
    expect(r.network!.nodes[0]).toMatchObject({ kind: 'residual', params: 20 + 16, macs: 2 * 16 * 64 });
    expect(r.network!.totals).toEqual({ params: 36, macs: 2048 });
  });
});

describe("pooling's ceil mode (Torch's rule)", () => {
  it('rounds the window count up, and drops a last window that would start in the right padding', () => {
    expect(poolOutputSize(13, 2, 2, 0, false)).toBe(6);
    expect(poolOutputSize(13, 2, 2, 0, true)).toBe(7);
    expect(poolOutputSize(112, 3, 2, 0, true)).toBe(56); // GoogLeNet's first pool
    expect(poolOutputSize(5, 2, 2, 1, true)).toBe(3); // ceil(5/2)+1 = 4, but window 4 would start at 6 ≥ 5 + 1
    expect(poolOutputSize(6, 3, 2, 1, true)).toBe(4); // ceil(5/2)+1 = 4, window 4 starts at 6 < 6 + 1: kept
  });

  it('drops the last window in both directions when either is padded, as THNN tests padW || padH', () => {
    // Height: kH 1, dH 3, padH 0 on 5 rows gives ceil(4/3)+1 = 3, but row window 3 would start at 6 ≥ 5: 2.
    const r = analyzeSpec('model m {\n  input 1x5x5\n  maxpool(3, 1, 3, 3, 1, 0):ceil()\n}\n', 'm.model');
    expect(r.diagnostics).toEqual([]);
    expect(r.network!.nodes[0].output).toEqual([1, 2, 2]);
    // Unpadded, Torch keeps it (the window is clipped): 5 rows -> 3, 5 columns -> ceil(2/3)+1 = 2.
    expect(poolOutputSize(5, 1, 3, 0, true)).toBe(3);
  });

  it('shapes a spec: maxpool(2, 2):ceil() on 13x13 gives 7x7', () => {
    const r = analyzeSpec('model m {\n  input 1x13x13\n  maxpool(2, 2):ceil()\n  maxpool(2, 2)\n}\n', 'm.model');
    expect(r.diagnostics).toEqual([]);
    expect(r.network!.nodes.map((n) => n.output)).toEqual([[1, 7, 7], [1, 3, 3]]);
  });
});

describe('lowering the zoo on every device (no compile)', () => {
  it("a depthconcat centres each smaller map in a zero border as nn.DepthConcat does (start = floor((size - own) / 2)), so it lowers and trains", () => {
    const source = [
      'model centre {',
      '  input 1x9x9',
      '  conv(1, 2, 1, 1)',
      '  depthconcat {',
      '    branch { conv(2, 2, 1, 1) }        # 2x9x9: as it is',
      '    branch { conv(2, 1, 5, 5) }        # 1x5x5: Torch: 2 rows/columns of zeros on each side',
      '    branch { conv(2, 3, 6, 6) }        # 3x4x4: Torch: 2 before, 3 after',
      '    branch { conv(2, 1, 3, 5) }        # 1x5x7 (kW 3, kH 5): 2 rows each side, 1 column each side',
      '  }',
      '  view(-1)  linear(7 * 81, 3)  logsoftmax',
      '}',
      '',
    ].join('\n');
    for (const device of ['cpu', 'emu'] as const) {
      const r = compileSpec(source, 'centre.model', { device });
      expect(r.diagnostics).toEqual([]);
      const layers = r.model!.layers;
      expect(layers.filter((l) => l.kind === 'zeropad').map((l) => [l.input, l.output, l.attrs])).toEqual([
        [[1, 5, 5], [1, 9, 9], { l: 2, r: 2, t: 2, b: 2 }],
        [[3, 4, 4], [3, 9, 9], { l: 2, r: 3, t: 2, b: 3 }],
        [[1, 5, 7], [1, 9, 9], { l: 1, r: 1, t: 2, b: 2 }],
      ]);
      // The zero borders are written by the branches, so the merge is a plain concat of 9x9 maps.
      const concat = layers.find((l) => l.kind === 'concat')!;
      expect(concat.from!.map((p) => layers[p].output)).toEqual([[2, 9, 9], [1, 9, 9], [3, 9, 9], [1, 9, 9]]);
      expect(concat.output).toEqual([7, 9, 9]);
    }
    const { compiled } = reportOnly('centre', source, 'emu');
    expect(compiled.plan.untrainable).toBeUndefined();
    expect((compiled.plan.programs.train_forward_backward?.steps ?? []).filter((k) => k.kernel.includes('zeropad_bwd'))).toHaveLength(3);
  });

  it('an emu build of a model with tanh inside a residual block trains: the fused program has its forward and backward kernels (no compile)', () => {
    const source = [
      'model res {',
      '  input 1x28x28',
      '  conv(1, 2, 3, 3, 2, 2, 1, 1)  relu',
      '  residual {',
      '    branch { conv(2, 2, 3, 3, 1, 1, 1, 1)  tanh }',
      '    branch { identity }',
      '  }',
      '  avgpool(14, 14)  view(2)  linear(2, 10)  logsoftmax',
      '}',
      '',
    ].join('\n');
    const { compiled } = reportOnly('res', source, 'emu');
    expect(compiled.plan.untrainable).toBeUndefined();
    const steps = compiled.plan.programs.train_forward_backward?.steps ?? [];
    expect(steps.map((k) => k.kernel).filter((name) => name.includes('tanh'))).toEqual(['k4_tanh_fwd', 'k4_tanh_bwd']);
    const noBias = join(work, 'nobias.model');
    writeFileSync(noBias, 'model m {\n  input 1x4x4\n  conv(1, 2, 3, 3):noBias()\n  view(-1)  linear(8, 2)  logsoftmax\n}\n');
    expect(nincc(['check', noBias]).code).toBe(0);
  });
});
