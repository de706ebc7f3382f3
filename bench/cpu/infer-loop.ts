// Times infer() of a built artifact at one batch size on the cpu device: the median and min of N
// calls after three warm-up calls. With a NINCC_PROFILE=1 build and NINCC_PROFILE=FILE (or 1) at run
// time, the kernel library also writes its per-kernel table when the process exits, which is how
// bench/RESULTS.md sets nincc's layers beside onnxruntime's (bench/cpu/ort-profile.ts):
//   NINCC_PROFILE=1 node bin/nincc build models/nin.model -o /tmp/nin-prof --max-batch 16
//   NINCC_PROFILE=1 node dist/bench/cpu/infer-loop.js /tmp/nin-prof --batch 1 --runs 60
import { parseArgs } from 'node:util';
import { load } from '../../runtime/model.js';
import { median } from './report.js';
import { refuseStaleAddon } from '../addon-fresh.js';

const { values, positionals } = parseArgs({ allowPositionals: true, options: { batch: { type: 'string', default: '1' }, runs: { type: 'string', default: '60' } } });
if (positionals.length !== 1) {
  console.error('usage: node dist/bench/cpu/infer-loop.js DIR [--batch N] [--runs N]');
  process.exit(2);
}

async function main(): Promise<void> {
  refuseStaleAddon();
  const batch = Number(values.batch), runs = Number(values.runs);
  const m = await load(positionals[0], { device: 'cpu', seed: 1 });
  try {
    const x = new Float32Array(batch * m.info.input.reduce((a, b) => a * b, 1)).map((_, i) => Math.sin(i));
    const ms: number[] = [];
    for (let i = 0; i < runs + 3; i++) {
      const t0 = performance.now();
      await m.infer(x);
      if (i >= 3) ms.push(performance.now() - t0);
    }
    console.log(`${positionals[0]}: infer at batch ${batch}, median ${median(ms).toFixed(2)} ms, min ${Math.min(...ms).toFixed(2)} ms over ${runs} calls`);
  } finally {
    m.dispose();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
