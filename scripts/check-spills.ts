// `node dist/scripts/check-spills.js [--gpu NAME] [MODEL.model ...]`: issue #15 acceptance 3 for every shipped model
// (models/*.model unless files are named): each model's CUDA in fp32 and bf16 compiled by nvcc for sm_80
// and sm_90 (--gpu: bf16 as `nincc build --gpu NAME` chooses its weight gradients' splits and tiles, compiled
// again at ptxas's resident blocks), one line per model and precision with its kernel count and spill total, then every kernel
// that spills. Models run one after another (nvcc already compiles the three targets in parallel); the
// kernel cache (NINCC_CACHE_DIR) makes a rerun of unchanged sources quick. Exit 1 on any spill, on a
// kernel that ptxas did not report, or on a model that fails to compile.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findNvcc } from '../compiler/backends/cuda/toolchain.js';
import { packageRoot } from '../compiler/package-root.js';
import { SPILL_ARCHES, spillCheck } from './spill-check.js';

const USAGE = `usage: node dist/scripts/check-spills.js [--gpu NAME] [MODEL.model ...]
  Compiles each model's CUDA (models/*.model when none is named) with nvcc for ${SPILL_ARCHES.join(' and ')} and
  prints its kernel count, spill bytes and most registers; exit 1 on any spill.
  --gpu NAME   bf16 only, as \`nincc build --gpu NAME\` chooses its weight gradients' splits and tiles
  --help       this text`;
const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  console.log(USAGE);
  process.exit(0);
}
const gpuAt = args.indexOf('--gpu');
if (gpuAt >= 0 && (args[gpuAt + 1] === undefined || args[gpuAt + 1]!.startsWith('-'))) {
  console.error(`check-spills: --gpu needs a GPU name (e.g. h100)\n${USAGE}`);
  process.exit(2);
}
const gpu = gpuAt >= 0 ? args[gpuAt + 1] : undefined;
const named = gpuAt >= 0 ? args.filter((_, i) => i !== gpuAt && i !== gpuAt + 1) : args;
const unknown = named.filter((a) => a.startsWith('-'));
if (unknown.length > 0) {
  console.error(`check-spills: unknown option ${unknown[0]}\n${USAGE}`);
  process.exit(2);
}
const found = findNvcc();
if (!found.nvcc) {
  console.error(`check-spills: nvcc is needed: ${found.reason}`);
  process.exit(2);
}
const models = named.length > 0 ? named : readdirSync(join(packageRoot(), 'models')).filter((f) => f.endsWith('.model')).sort().map((f) => join(packageRoot(), 'models', f));
const work = mkdtempSync(join(tmpdir(), 'nincc-spills-'));
const precisions = gpu !== undefined ? (['bf16'] as const) : (['fp32', 'bf16'] as const);
console.log(`nvcc ${found.version}; ${SPILL_ARCHES.join(' and ')}; ${models.length} models in ${precisions.join(' and ')}${gpu !== undefined ? ` for --gpu ${gpu}` : ''}`);
let failed = 0;
try {
  for (const file of models) {
    for (const precision of precisions) {
      const started = Date.now();
      try {
        const c = spillCheck(file, precision, work, gpu);
        const missing = SPILL_ARCHES.flatMap((arch) => c.kernels.filter((k) => !c.compiled[arch].some((p) => p.kernel === k)).map((k) => `${arch} ${k}`));
        const bytes = c.spilled.reduce((sum, k) => sum + k.spillStores + k.spillLoads, 0);
        const maxRegisters = Math.max(...SPILL_ARCHES.flatMap((arch) => c.compiled[arch].map((k) => k.registers)));
        const seconds = ((Date.now() - started) / 1000).toFixed(0);
        console.log(`${file.replace(`${packageRoot()}/`, '')} ${precision}: ${c.kernels.length} kernels, ${c.spilled.length} spilling (${bytes} B spill stores+loads), max ${maxRegisters} registers; ${c.cached ? 'cached' : `nvcc ${seconds} s`}`);
        for (const k of c.spilled) console.log(`  SPILL ${k.arch} ${k.kernel}: ${k.registers} registers, spill stores ${k.spillStores} B, loads ${k.spillLoads} B`);
        for (const m of missing) console.log(`  MISSING from ptxas's report: ${m}`);
        if (c.spilled.length > 0 || missing.length > 0) failed++;
      } catch (e) {
        console.log(`${file} ${precision}: FAILED: ${e instanceof Error ? e.message : String(e)}`);
        failed++;
      }
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
console.log(failed === 0 ? 'no spills' : `${failed} model/precision pairs failed`);
process.exit(failed === 0 ? 0 : 1);
