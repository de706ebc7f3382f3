// `node dist/bench/build-ablated.js SPEC OUT_DIR [--without NAME]... [--with NAME]... [--precision fp32] [--target cpu]`:
// an emu bf16 (or fp32) build, or with --target cpu a cpu build, of a spec with ablation switches off or opt-ins on
// (compiler/ablations.ts), for `nincc profile OUT_DIR` or bench/cpu/cpu-small-ab.ts A/B runs (the CLI has no ablation
// flag). Max batch 128 unless --max-batch; weight-gradient splits for --gpu (default h100), as `nincc profile SPEC` builds.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { buildArtifact } from '../compiler/build.js';
import { compileSpec } from '../compiler/pipeline.js';
import { ABLATIONS, OPT_INS, type Ablation, type Ablations, type OptIn } from '../compiler/ablations.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { without: { type: 'string', multiple: true }, with: { type: 'string', multiple: true }, 'max-batch': { type: 'string' }, gpu: { type: 'string' }, precision: { type: 'string' }, target: { type: 'string', default: 'emu' } },
});
const [specFile, outDir] = positionals;
if (!specFile || !outDir) throw new Error('usage: build-ablated.js SPEC OUT_DIR [--without NAME]... [--with NAME]... [--precision fp32] [--target cpu]');
const unknown = [...(values.without ?? []).filter((n) => !(n in ABLATIONS)), ...(values.with ?? []).filter((n) => !(n in OPT_INS))];
if (unknown.length > 0) throw new Error(`unknown switches: ${unknown.join(', ')}`);
const ablations: Ablations = {
  ...Object.fromEntries((values.without ?? []).map((n) => [n as Ablation, false])),
  ...Object.fromEntries((values.with ?? []).map((n) => [n as OptIn, true])),
};
const precision = values.precision ?? 'bf16';
if (precision !== 'bf16' && precision !== 'fp32') throw new Error(`--precision: bf16 or fp32, not ${precision}`);
if (values.target !== 'emu' && values.target !== 'cpu') throw new Error(`--target ${values.target}: emu or cpu`);
const source = readFileSync(specFile, 'utf8');
const r = compileSpec(source, specFile);
if (!r.model) throw new Error(`${specFile}: ${r.diagnostics.map((d) => d.message).join('; ')}`);
const maxBatch = Number(values['max-batch'] ?? 128), log = (line: string) => console.error(line);
const built = values.target === 'cpu'
  ? buildArtifact(r.model, source, { outDir, target: 'cpu', maxBatch, ablations, log })
  : buildArtifact(r.model, source, { outDir, target: 'emu', precision, maxBatch, gpu: values.gpu ?? 'h100', ablations, log });
console.log(built.dir);
