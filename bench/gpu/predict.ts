// The time model on counters the emulator took (`emu_test --counts` JSON lines): per kernel the
// predicted time, the pipe that bounds it and that pipe's fraction of peak (runtime/profile/).
//   npx tsc -p tsconfig.json && node dist/bench/gpu/predict.js --gpu h100 COUNTS.jsonl [--json OUT.jsonl]
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { gpuNamed } from '../../runtime/profile/gpus.js';
import { predictKernel, type KernelCounts } from '../../runtime/profile/time-model.js';

const { values, positionals } = parseArgs({
  options: { gpu: { type: 'string', default: 'h100' }, json: { type: 'string' } },
  allowPositionals: true,
});
if (positionals.length !== 1) throw new Error('usage: predict.js --gpu a100|h100|h200 COUNTS.jsonl [--json OUT.jsonl]');
const gpu = gpuNamed(values.gpu ?? 'h100');
const file = positionals[0];
const counts: KernelCounts[] = readFileSync(file, 'utf8')
  .split('\n')
  .filter((line) => line.trim() !== '')
  .map((line, i) => {
    try {
      return JSON.parse(line) as KernelCounts;
    } catch (e) {
      throw new Error(`${file}:${i + 1}: not a JSON line of counters (${(e as Error).message})`);
    }
  });
const predictions = counts.map((c) => predictKernel(c, gpu));
console.log(`${gpu.name}: predicted time per kernel (µs), the bounding pipe and its fraction of peak`);
for (const p of predictions)
  console.log(`${p.kernel.padEnd(20)} ${p.micros.toFixed(3).padStart(10)} µs  ${p.bound.padEnd(6)} ${(100 * p.fractionOfPeak).toFixed(2).padStart(6)} %`);
if (values.json) writeFileSync(values.json, predictions.map((p) => JSON.stringify(p)).join('\n') + '\n');
