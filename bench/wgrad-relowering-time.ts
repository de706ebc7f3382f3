// `node dist/bench/wgrad-relowering-time.js MODEL.model GPU [ROUNDS]`: the compile side of a bf16 `nincc build --gpu GPU`
// (compiler/compile-at-residency.ts: the lowering, ptxas's resident blocks, the second lowering where a choice changes),
// A with `wgradSkipSameChoice` off (the second lowering whenever R differs) against B (the default: only where a split
// count or tile changes), interleaved ROUNDS times (default 2). nvcc goes through the kernel cache (NINCC_CACHE_DIR):
// a first run compiles, the rounds after read its ptxas report; the compile counts and the CPU seconds of this process
// (process.cpuUsage: little moved by a loaded machine's other processes) are printed per run, with the wall time.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { Ablations } from '../compiler/ablations.js';
import { nvccCompile } from '../compiler/backends/cuda/toolchain.js';
import { compileAtResidency } from '../compiler/compile-at-residency.js';
import { compileSpec } from '../compiler/pipeline.js';

// The spill check's source hash (scripts/spill-check.ts): the same CUDA text, so the kernel cache it filled serves these compiles.
const SPILL_CHECK_HASH = 'spill-check';
const [file, gpu, roundsArg] = process.argv.slice(2);
if (!file || !gpu) {
  console.error('usage: node dist/bench/wgrad-relowering-time.js MODEL.model GPU [ROUNDS]');
  process.exit(2);
}
const r = compileSpec(readFileSync(file, 'utf8'), basename(file), { device: 'cuda' });
if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
const model = r.model;
const work = mkdtempSync(join(tmpdir(), 'nincc-relowering-'));
const variants: [string, Ablations][] = [['A (wgradSkipSameChoice off)', { wgradSkipSameChoice: false }], ['B (default)', {}]];
try {
  for (let round = 0; round < Number(roundsArg ?? 2); round++) {
    for (const [name, ablations] of variants) {
      let compiles = 0;
      const cpu = process.cpuUsage();
      const started = Date.now();
      const built = compileAtResidency(model, { target: 'emu', maxBatch: model.train?.batch ?? 128, sourceHash: SPILL_CHECK_HASH, libraries: {}, cpuFeatures: [], precision: 'bf16', gpu, ablations }, (source) => {
        compiles++;
        const cuPath = join(work, `${compiles}.cu`);
        writeFileSync(cuPath, source.text);
        return nvccCompile(source.text, cuPath, join(work, `${compiles}.fatbin`), true);
      });
      const used = process.cpuUsage(cpu);
      const seconds = (us: number) => (us / 1e6).toFixed(2);
      console.log(`round ${round + 1} ${name}: ${compiles} compile${compiles === 1 ? '' : 's'} (relowered: ${built.relowered}), CPU ${seconds(used.user + used.system)} s, wall ${((Date.now() - started) / 1000).toFixed(2)} s`);
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
