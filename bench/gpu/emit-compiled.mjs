// Writes the compiled model (every kernel's source, the plan) of a spec for emu at bf16 (or PRECISION), as an H100 build lowers it,
// as JSON: two checkouts' outputs compared with `cmp` show whether a change leaves a model's kernels alone.
// Run from a checkout's root after `npx tsc -p tsconfig.json`:
//   node bench/gpu/emit-compiled.mjs models/nin.model OUT.json [MAX_BATCH] [PRECISION] [ABLATIONS_JSON]
// ABLATIONS_JSON: the switches (compiler/ablations.ts), e.g. '{"addBwdInDgrad":false}' for a build with that one off.
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';

const [spec, out, maxBatch = '128', precision = 'bf16', ablations = '{}'] = process.argv.slice(2);
if (!spec || !out) {
  console.error('usage: node bench/gpu/emit-compiled.mjs SPEC OUT.json [MAX_BATCH] [PRECISION] [ABLATIONS_JSON]');
  process.exit(2);
}
const { compileModel, compileSpec } = await import(resolve('dist/compiler/pipeline.js'));
const r = compileSpec(readFileSync(spec, 'utf8'), basename(spec), { device: 'emu' });
if (!r.model) {
  console.error(r.diagnostics.map((d) => d.message).join('\n'));
  process.exit(1);
}
const compiled = compileModel(r.model, { target: 'emu', maxBatch: Number(maxBatch), sourceHash: 'emit', libraries: {}, cpuFeatures: [], precision, gpu: 'h100', ablations: JSON.parse(ablations) });
writeFileSync(out, JSON.stringify(compiled, null, 1));
