// `node dist/bench/gpu/conv-mma-last-cta-bn-tail-estimate.js [MODEL.model] [--gpu h100]`: what folding each
// bn_finalize into its producer's last block (issue #15, task i15K) would put on that block, before writing it.
// A ticket per channel tile (the producer's grid.y) leaves one block per tile to read every partial row of its
// channels — the separate finalize spreads the same reads over ceil(C/8) blocks of 1024 threads. The figure
// printed is a lower bound on that block's tail: its bytes at one SM's share of the L2 bandwidth (gpus.ts), which
// the time model (runtime/profile/time-model.ts) does not see, since it prices traffic as if spread over all SMs.
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { compileModel, compileSpec } from '../../compiler/pipeline.js';
import { packageRoot } from '../../compiler/package-root.js';
import { gpuNamed } from '../../runtime/profile/gpus.js';
import { FINALIZE_ROW_LANES } from '../../compiler/backends/cuda/bn-finalize-columns.js';

const args = process.argv.slice(2);
const gpuAt = args.indexOf('--gpu');
const gpu = gpuNamed(gpuAt >= 0 ? args[gpuAt + 1] : 'h100');
const file = args.find((a, i) => a.endsWith('.model') && i !== gpuAt + 1) ?? join(packageRoot(), 'models', 'nin.model');
const spec = compileSpec(readFileSync(file, 'utf8'), basename(file), { device: 'cuda' });
if (!spec.model) throw new Error(`${file}: ${spec.diagnostics.map((d) => d.message).join('; ')}`);
const batch = spec.model.train?.batch ?? 128;
const built = compileModel(spec.model, { target: 'cuda', maxBatch: batch, sourceHash: 'bn-tail-estimate', libraries: {}, cpuFeatures: [], precision: 'bf16' });
const launches = new Map(built.cuda!.kernels.map((k) => [k.name, k.launch]));
// One SM's share of the L2 bandwidth, bytes per µs.
const smShare = (gpu.l2BytesPerClock * gpu.clockGHz * 1e3) / gpu.sms;
console.log(`${basename(file)} bf16 batch ${batch} on ${gpu.name}: one SM's L2 share ${(smShare / 1e3).toFixed(1)} GB/s (${gpu.l2BytesPerClock} B/clk / ${gpu.sms} SMs × ${gpu.clockGHz} GHz)`);
// What each finalize reads a partial row and channel: the forward reads st_mean twice (the mean, then the
// deviations) and st_m2 once; the backward reads Σdz and Σdz·x̂ once each.
const FINALIZES = { bn_finalize: { partials: 'st_mean', bytes: 12 }, bn_bwd_finalize: { partials: 'st_dz', bytes: 8 } } as const;
// A ticket per channel tile: a conv's grid.y tiles the channels; a pool backward's grid.x tiles channel segments over the
// batch on grid.z (pool-vec-backward.ts; a segment can straddle two channels, so the figure is ceil(C / grid.x)).
const channelTiles = (op: string, grid: readonly number[], batchAxis?: number) => (op.startsWith('conv_') ? grid[1] : batchAxis === 2 ? grid[0] : 1);
console.log('finalize             producer                 C    HW   rows  partials  tickets×channels  tail reads/block  at one SM\'s share  tree rounds/pass');
for (const program of built.lowered.programs) {
  for (const [i, step] of program.steps.entries()) {
    if (step.op !== 'bn_finalize' && step.op !== 'bn_bwd_finalize') continue;
    const what = FINALIZES[step.op];
    const producer = program.steps.slice(0, i).reverse().find((s) => Object.values(s.buffers).includes(step.buffers[what.partials]));
    const { C, HW } = step.consts as { C: number; HW: number };
    const rows = batch * Math.ceil(HW / 32);
    const launch = producer ? launches.get(producer.kernel) : undefined;
    const tiles = launch && producer ? channelTiles(producer.op, launch.grid, launch.batchAxis) : 1;
    const perTile = Math.ceil(C / tiles);
    const threads = launch ? launch.block[0] * launch.block[1] * launch.block[2] : 256;
    const tailBytes = rows * perTile * what.bytes;
    // The separate finalize's 128-lane tree per channel, done by the last block's threads a lane each.
    const rounds = Math.ceil((perTile * FINALIZE_ROW_LANES) / threads);
    console.log(
      `${step.kernel.padEnd(20)} ${(producer?.kernel ?? '?').padEnd(22)} ${String(C).padStart(4)} ${String(HW).padStart(5)} ${String(rows).padStart(6)} ${((rows * C * 8) / 2 ** 20).toFixed(2).padStart(6)} MiB ${`${tiles}×${perTile}`.padStart(17)} ${((tailBytes / 2 ** 20).toFixed(2) + ' MiB').padStart(17)} ${(tailBytes / smShare).toFixed(1).padStart(15)} µs ${String(rounds).padStart(16)}`,
    );
  }
}
