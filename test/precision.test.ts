// The precision setting (issue #15): the train block's `precision`, `--precision` on the commands that
// build, what plan.json and report.txt record, and which kernels each precision generates. Compiles only
// (no g++), except the CLI's usage error, which stops before building.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildArtifact } from '../compiler/build.js';
import { compileModel, compileSpec } from '../compiler/pipeline.js';
import type { Precision } from '../compiler/ir.js';
import { nincc } from './cli-run.js';

const spec = (train: string) => `model p { input 3x9x9  conv(3, 8, 3, 3, 1, 1, 1, 1)  bn(8)  relu  view(-1)  linear(648, 2)  logsoftmax }\n${train}\n`;

function compiled(train: string, target: 'cpu' | 'emu', precision?: Precision) {
  const r = compileSpec(spec(train), 'p.model');
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  return { model: r.model, c: compileModel(r.model, { target, maxBatch: 4, sourceHash: 'test', libraries: {}, cpuFeatures: [], ...(precision ? { precision } : {}) }) };
}

describe('precision', () => {
  it('the train block takes fp32, tf32 and bf16', () => {
    for (const p of ['fp32', 'tf32', 'bf16'] as const) expect(compileSpec(spec(`train { precision ${p} }`), 'p.model').model?.train?.precision).toBe(p);
    expect(compileSpec(spec('train { batch 4 }'), 'p.model').model?.train?.precision).toBeUndefined();
  });

  it('a bad value is E043 at the value, with a hint', () => {
    const d = compileSpec(spec('train { precision bf61 }'), 'p.model').diagnostics;
    expect(d.map((x) => `${x.code} ${x.span.start.line}:${x.span.start.column} ${x.message}`)).toEqual(["E043 2:19 precision must be one of fp32, tf32, bf16, got 'bf61' (did you mean 'bf16'?)"]);
  });

  it('fp32 (the default) generates the SIMT conv and records nothing; bf16 the tensor-core conv, recorded in plan.json and report.txt', () => {
    const fp32 = compiled('train { batch 4 }', 'emu').c;
    expect(fp32.plan.precision).toBeUndefined();
    expect(fp32.cuda!.source.text).not.toContain('mma_bf16_m16n8k16');
    const bf16 = compiled('train { batch 4 }', 'emu', 'bf16').c;
    expect(bf16.plan.precision).toBe('bf16');
    const kernels = bf16.cuda!.kernels.filter((k) => k.tile);
    // The first conv reads the images: no data gradient, so its forward, inference and weight gradient are tensor-core kernels;
    // the linear layer's inference, forward and both gradients too (dense-mma.ts).
    expect(kernels.map((k) => k.name)).toEqual(['k1_conv_infer', 'k5_linear_infer', 'k1_conv_fwd_fused', 'k5_linear_fwd', 'k5_linear_bwd_weight', 'k5_linear_bwd_data', 'k1_conv_wgrad_fused']);
    expect(fp32.cuda!.kernels.find((k) => k.name === 'k5_linear_fwd')!.fused ?? '').not.toContain('bf16');
    expect(bf16.cuda!.source.text).toContain('nincc::mma_bf16_m16n8k16');
    expect(bf16.cuda!.kernels.find((k) => k.name === 'k1_conv_wgrad_fused')!.fused).toContain('bf16 tensor-core implicit-GEMM wgrad');
    expect(fp32.cuda!.kernels.find((k) => k.name === 'k1_conv_wgrad_fused')!.fused ?? '').not.toContain('bf16');
  });

  it('the build option overrides the spec, both ways', () => {
    expect(compiled('train { precision bf16 }', 'emu', 'fp32').c.plan.precision).toBeUndefined();
    expect(compiled('train { batch 4 }', 'emu', 'bf16').c.plan.precision).toBe('bf16');
  });

  it('the cpu kernels compute in fp32 whatever is asked; tf32 on emu/cuda is refused until it has kernels', () => {
    expect(compiled('train { precision bf16 }', 'cpu').c.plan.precision).toBeUndefined();
    const r = compileSpec(spec('train { precision tf32 }'), 'p.model');
    expect(() => buildArtifact(r.model!, spec('train { precision tf32 }'), { outDir: join(tmpdir(), 'nincc-never-written'), target: 'emu' })).toThrow(/precision tf32: no tf32 kernels yet/);
  });

  it('nincc build --precision: an unknown value is a usage error naming the choices', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nincc-precision-'));
    try {
      writeFileSync(join(dir, 'p.model'), spec(''));
      const r = nincc(['build', join(dir, 'p.model'), '--precision', 'bf8', '-o', join(dir, 'out')]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("unknown precision 'bf8' (available: fp32, tf32, bf16)");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
