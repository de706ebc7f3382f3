// onnxruntime-node's own per-node times for an ONNX model (its session profiler), to set beside
// nincc's per-kernel table (a NINCC_PROFILE=1 build) layer by layer.
//   npx tsc -p tsconfig.json && node dist/bench/cpu/ort-profile.js build/bench-cpu/nin/nin.onnx [--batch 1] [--runs 60]
// (npm run bench:cpu writes that .onnx.) Prints each node's median kernel time over the runs after
// three warm-up runs, slowest first; 2 intra-op threads unless --threads says otherwise.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { median } from './report.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { batch: { type: 'string', default: '1' }, runs: { type: 'string', default: '60' }, threads: { type: 'string', default: String(availableParallelism()) } },
});
if (positionals.length !== 1) {
  console.error('usage: node dist/bench/cpu/ort-profile.js MODEL.onnx [--batch N] [--runs N] [--threads N]');
  process.exit(2);
}

interface ProfileEvent {
  readonly cat?: string;
  readonly name: string;
  readonly dur: number; // µs
  readonly args?: { readonly op_name?: string };
}

async function main(): Promise<void> {
  const batch = Number(values.batch), runs = Number(values.runs), warmup = 3;
  const prefix = `nincc-ort-profile-${process.pid}`;
  const session = await ort.InferenceSession.create(positionals[0], {
    executionProviders: ['cpu'],
    intraOpNumThreads: Number(values.threads),
    interOpNumThreads: 1,
    enableProfiling: true,
    profileFilePrefix: join(tmpdir(), prefix),
  });
  const dims = (session.inputMetadata?.[0] as { shape?: readonly (number | string)[] } | undefined)?.shape?.slice(1).map(Number);
  if (!dims || dims.some((d) => !Number.isFinite(d))) throw new Error(`${positionals[0]}: cannot read the input's C×H×W`);
  const x = new Float32Array(batch * dims.reduce((a, b) => a * b, 1)).map((_, i) => Math.sin(i));
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', x, [batch, ...dims]) };
  for (let i = 0; i < warmup + runs; i++) await session.run(feeds);
  // onnxruntime-node's endProfiling returns nothing: the file is the one named by the prefix.
  (session as unknown as { endProfiling(): void }).endProfiling();
  await session.release();
  const names = readdirSync(tmpdir()).filter((f) => f.startsWith(prefix) && f.endsWith('.json'));
  if (names.length !== 1) throw new Error(`expected one onnxruntime profile ${join(tmpdir(), prefix)}*.json, found ${names.length}`);
  const file = join(tmpdir(), names[0]);
  const events = JSON.parse(readFileSync(file, 'utf8')) as ProfileEvent[];
  rmSync(file, { force: true });
  const perNode = new Map<string, number[]>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const key = `${e.name.slice(0, -'_kernel_time'.length)} (${e.args?.op_name ?? '?'})`;
    perNode.set(key, [...(perNode.get(key) ?? []), e.dur]);
  }
  const rows = [...perNode].map(([node, durs]) => ({ node, ms: median(durs.slice(warmup)) / 1000 })).sort((a, b) => b.ms - a.ms);
  console.log(`onnxruntime-node per-node kernel times, batch ${batch}, median of ${runs} runs, ${values.threads} threads`);
  for (const r of rows) console.log(`${r.ms.toFixed(3).padStart(9)} ms  ${r.node}`);
  console.log(`${rows.reduce((s, r) => s + r.ms, 0).toFixed(3).padStart(9)} ms  sum`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
