// NIN compiled for cpu as the cpu ablation tests read it (max batch 16, the 2-core VM's 300 MiB L3), with
// the given ablation switches off, and one kernel's function out of the generated source. Without the block regions
// (cpuBlockBands, schedule/cpu-block-bands.ts) unless asked: those tests pin the layers' own kernels, which a region
// calls from lambdas (test/cpu-block-bands.test.ts checks the switches reach them there).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Ablations } from '../compiler/ablations.js';
import { compileModel, compileSpec } from '../compiler/pipeline.js';
import { root } from './cli-run.js';

const spec = join(root, 'models/nin.model');
const model = compileSpec(readFileSync(spec, 'utf8'), spec).model!;

export const compiledNin = (ablations?: Ablations) =>
  compileModel(model, { target: 'cpu', maxBatch: 16, sourceHash: 'test', libraries: {}, cpuFeatures: [], cpuL3Bytes: 300 * 2 ** 20, ablations: { cpuBlockBands: false, ...ablations } });

/** How many packed implicit-GEMM conv calls (conv2d_forward with PackedConvWeights, conv2d_forward_packed) a source text makes. */
export const packedGemmCalls = (text: string) => (text.match(/(?:conv2d_forward(?:<[^\n]*?>)?\(shape, [^\n]*PackedConvWeights|conv2d_forward_packed\()/g) ?? []).length;

/** The body of `void name(` in generated source text. */
export const kernelSource = (text: string, name: string) => text.slice(text.indexOf(`void ${name}(`), text.indexOf('\n}\n', text.indexOf(`void ${name}(`)));
