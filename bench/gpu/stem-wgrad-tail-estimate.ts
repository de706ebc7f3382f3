// `node dist/bench/gpu/stem-wgrad-tail-estimate.js [--gpu h100]`: what summing NIN's stem weight-gradient splits puts on
// the few blocks that do it (task i15a, lower/train-fused.ts stemWaveSplits), which the time model does not see (it prices
// traffic as if spread over all SMs): each block's bytes at one SM's share of the L2 bandwidth (gpus.ts), a lower bound,
// as bench/gpu/conv-mma-last-cta-bn-tail-estimate.ts reckons the BN tails.
import { gpuNamed } from '../../runtime/profile/gpus.js';
import { REDUCE_PER_THREAD } from '../../compiler/backends/cuda/conv.js';
import { BLOCK } from '../../compiler/backends/cuda/parts.js';

const args = process.argv.slice(2);
const gpuAt = args.indexOf('--gpu');
const gpu = gpuNamed(gpuAt >= 0 ? args[gpuAt + 1] : 'h100');
const smShare = (gpu.l2BytesPerClock * gpu.clockGHz * 1e9) / gpu.sms; // bytes per second
const weights = 96 * 3 * 11 * 11; // NIN's stem: K·C·R·S
const tile = 128 * 96; // its weight gradient's output tile (3 of them)
const reduceBlocks = Math.ceil(weights / (BLOCK * REDUCE_PER_THREAD));
const row = (what: string, bytes: number, sms: number) =>
  console.log(`${what.padEnd(72)} ${(bytes / 1e6).toFixed(2).padStart(6)} MB on ${String(sms).padStart(3)} SMs: ${((bytes / (sms * smShare)) * 1e6).toFixed(1).padStart(5)} µs`);
console.log(`${gpu.name}: one SM's L2 share ${(smShare / 1e9).toFixed(1)} GB/s; NIN's stem dW ${weights} weights, tiles of ${tile}`);
for (const splits of [32, 88]) row(`folded (wgradLastSplit), ${splits} splits: each tile's last block reads ${splits} partial tiles`, splits * tile * 4, 1);
row(`wgrad_reduce, 88 splits: ${reduceBlocks} blocks of ${BLOCK} (${REDUCE_PER_THREAD} weights a thread)`, 88 * weights * 4, reduceBlocks);
