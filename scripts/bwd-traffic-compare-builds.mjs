// Compares two nincc checkouts' emu bf16 builds of a spec (kernel bodies, params and launches, the cuda source, plan.json), each with its ablations:
// node scripts/bwd-traffic-compare-builds.mjs CHECKOUT_A '{"bf16Gradients":false}' CHECKOUT_B '{}' models/nin.model (each checkout's dist/ built). An off switch's build should equal the build before its change.
import { readFileSync } from 'node:fs';
const [distA, ablA, distB, ablB, spec] = process.argv.slice(2);
async function build(dist, abl) {
  const { compileSpec, compileModel } = await import(`${dist}/dist/compiler/pipeline.js`);
  const src = readFileSync(spec, 'utf8');
  const r = compileSpec(src, spec);
  const ablations = JSON.parse(abl);
  return compileModel(r.model, { target: 'emu', maxBatch: 128, sourceHash: 't', libraries: {}, cpuFeatures: [], precision: 'bf16', ...(Object.keys(ablations).length ? { ablations } : {}) });
}
const a = await build(distA, ablA), b = await build(distB, ablB);
const ka = a.cuda.kernels, kb = b.cuda.kernels;
console.log(`kernels: ${ka.length} vs ${kb.length}`);
let diff = 0;
for (let i = 0; i < Math.max(ka.length, kb.length); i++) {
  const x = ka[i], y = kb[i];
  const sx = x && JSON.stringify({ n: x.name, p: x.params, b: x.body, l: x.launch }), sy = y && JSON.stringify({ n: y.name, p: y.params, b: y.body, l: y.launch });
  if (sx !== sy) { diff++; console.log(`differs: ${x?.name} / ${y?.name}`); }
}
console.log(`cuda source identical: ${a.cuda.source.text === b.cuda.source.text || JSON.stringify(a.cuda.source) === JSON.stringify(b.cuda.source)}`);
console.log(`plan identical: ${JSON.stringify(a.plan) === JSON.stringify(b.plan)}`);
console.log(`kernels differing: ${diff}`);
