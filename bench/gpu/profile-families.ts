// A `nincc profile --json` file's training-step kernels summed by family (the op in each kernel's name,
// e.g. add_apply, add_bwd_fused; everything else as "other"): launches, predicted µs, MB loaded and stored.
//   npx tsc -p tsconfig.json && node dist/bench/gpu/profile-families.js PROFILE.json add_apply add_bwd_fused
import { readFileSync } from 'node:fs';

interface ProfiledKernel {
  readonly kernel: string;
  readonly phase: string;
  readonly launches: number;
  readonly counts: { readonly global_load_sectors: number; readonly global_store_sectors: number };
  readonly prediction: { readonly micros: number; readonly bound: string };
}

const [file, ...families] = process.argv.slice(2);
if (!file || families.length === 0) {
  console.error('usage: profile-families PROFILE.json FAMILY…');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8')) as { model: string; gpu: string; batch: number; trainMicros: number; kernels: ProfiledKernel[] };
const training = profile.kernels.filter((k) => k.phase !== 'infer');
const familyOf = (k: ProfiledKernel) => families.find((f) => k.kernel.endsWith(`_${f}`)) ?? 'other';
const mb = (sectors: number) => ((sectors * 32) / 1e6).toFixed(1);

console.log(`${profile.model} on ${profile.gpu}, batch ${profile.batch}: training step ${profile.trainMicros.toFixed(0)} µs predicted`);
for (const family of [...families, 'other']) {
  const ks = training.filter((k) => familyOf(k) === family);
  const sum = (f: (k: ProfiledKernel) => number) => ks.reduce((s, k) => s + f(k) * k.launches, 0);
  const micros = sum((k) => k.prediction.micros);
  console.log(
    `${family.padEnd(14)} launches ${String(sum(() => 1)).padStart(4)}  ${micros.toFixed(1).padStart(8)} µs (${((100 * micros) / profile.trainMicros).toFixed(2)} %)  loaded ${mb(sum((k) => k.counts.global_load_sectors))} MB  stored ${mb(sum((k) => k.counts.global_store_sectors))} MB`,
  );
  if (family !== 'other') for (const k of ks) console.log(`  ${k.kernel.padEnd(22)} ${k.prediction.micros.toFixed(1).padStart(7)} µs  loaded ${mb(k.counts.global_load_sectors)} MB  stored ${mb(k.counts.global_store_sectors)} MB  ${k.prediction.bound}`);
}
