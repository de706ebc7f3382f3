// Each kernel of an emu/cuda artifact with its grid, its resident blocks a SM by report.txt's ptxas lines, its waves and
// the time model's last-wave factor q (runtime/profile/time-model.ts waveQuantization) on each GPU: which launches the
// wave term charges most, without emulating anything. q applies to the SM pipes only (fp32, tensor, shared).
//   npx tsc -p tsconfig.json && node dist/bench/gpu/wave-quantization.js DIR [--min-q 1.1]
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Plan } from '../../compiler/emit/plan.js';
import { GPUS } from '../../runtime/profile/gpus.js';
import { launchResidentBlocks } from '../../runtime/profile/occupancy.js';
import { ptxasResources } from '../../runtime/profile/run-profile.js';
import { waveQuantization } from '../../runtime/profile/time-model.js';
import { gridBlocks, wavesOf } from '../../runtime/profile/waves.js';

const { values, positionals } = parseArgs({ options: { 'min-q': { type: 'string', default: '1' } }, allowPositionals: true });
if (positionals.length !== 1) throw new Error('usage: wave-quantization.js DIR [--min-q Q]');
const dir = positionals[0];
const minQ = Number(values['min-q']);
const plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as Plan;
const report = readFileSync(join(dir, 'report.txt'), 'utf8');
const gpus = ['h100', 'a100'].map((name) => ({ name, gpu: GPUS[name], ptxas: ptxasResources(report, GPUS[name].arch) }));

console.log(`${'program'.padEnd(22)} ${'kernel'.padEnd(26)} ${'grid'.padStart(12)} ${'blocks'.padStart(6)} thr  ${gpus.map((g) => `${g.name}: regs  R waves      q`).join('  ')}`);
for (const [program, p] of Object.entries(plan.programs)) {
  for (const s of p.steps) {
    if (!s.launch) continue;
    const launch = s.launch;
    const blocks = gridBlocks(launch) ?? 0;
    const cells = gpus.map(({ gpu, ptxas }) => {
      const res = ptxas.get(s.kernel);
      const r = res ? launchResidentBlocks(launch, res, gpu) : 1;
      const q = waveQuantization({ grid: launch.grid, blocks }, gpu.sms, r);
      return { text: `${String(res?.registers ?? '?').padStart(10)} ${String(r).padStart(2)} ${String(wavesOf(blocks, gpu.sms, r)).padStart(5)} ${q.toFixed(2).padStart(6)}`, q };
    });
    if (cells.every((c) => c.q < minQ)) continue;
    console.log(`${program.padEnd(22)} ${s.kernel.padEnd(26)} ${launch.grid.join('×').padStart(12)} ${String(blocks).padStart(6)} ${String(launch.block[0] * launch.block[1] * launch.block[2]).padStart(3)}  ${cells.map((c) => c.text).join('  ')}`);
  }
}
