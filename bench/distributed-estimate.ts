// The paper estimate of data-parallel NIN training on 8 and 64 H100s (docs/distributed.md): the
// gradient all-reduce per step under the ring model, against the step's compute time, no overlap.
//   npx tsc -p tsconfig.json && node dist/bench/distributed-estimate.js [--params N] [--rate IMAGES_PER_S]...
import { parseArgs } from 'node:util';

/** A level of the interconnect a ring crosses: its nominal per-direction bandwidth and the assumptions on it. */
interface Link {
  readonly name: string;
  /** GB/s per GPU per direction, nominal. */
  readonly nominalGBs: number;
  /** the fraction of nominal an NCCL ring reaches on tens-of-MB messages (an assumption, not measured here) */
  readonly efficiency: number;
  /** per-hop latency in microseconds (an assumption) */
  readonly hopMicroseconds: number;
}

// H100 SXM5: NVLink 4, 900 GB/s per GPU in both directions together (NVIDIA H100 datasheet) -> 450 each way.
const NVLINK: Link = { name: 'NVLink 4 (NVSwitch, one DGX H100)', nominalGBs: 450, efficiency: 0.8, hopMicroseconds: 2 };
// DGX H100: one 400 Gb/s NDR InfiniBand ConnectX-7 per GPU (NVIDIA DGX H100 user guide) -> 50 GB/s each way.
const INFINIBAND: Link = { name: 'InfiniBand NDR 400 Gb/s per GPU (8 nodes)', nominalGBs: 50, efficiency: 0.8, hopMicroseconds: 5 };

/** Ring all-reduce: 2(N−1) steps, each moving bytes/N per GPU: t = 2(N−1)·α + 2(N−1)/N · bytes / busBW. */
export function ringAllReduceSeconds(bytes: number, gpus: number, link: Link, buckets: number): { seconds: number; volume: number } {
  const volume = ((2 * (gpus - 1)) / gpus) * bytes;
  const bandwidth = link.nominalGBs * link.efficiency * 1e9;
  const latency = buckets * 2 * (gpus - 1) * link.hopMicroseconds * 1e-6;
  return { seconds: volume / bandwidth + latency, volume };
}

function main(): void {
  const { values } = parseArgs({
    options: {
      params: { type: 'string', default: '8655336' }, // `nincc inspect models/nin.model`
      batch: { type: 'string', default: '128' }, // per GPU
      bucket: { type: 'string', default: String(1 << 20) }, // elements per bucket (runtime/distributed/data-parallel.ts)
      rate: { type: 'string', multiple: true, default: ['1082', '5000', '20000'] }, // single-GPU training images/s
    },
  });
  const params = Number(values.params);
  const batch = Number(values.batch);
  const bytes = params * 4; // fp32 gradients
  const buckets = Math.ceil(params / Number(values.bucket));
  console.log(`NIN: ${params} parameters, ${(bytes / 1e6).toFixed(1)} MB of fp32 gradients per step in ${buckets} buckets; batch ${batch} per GPU`);
  for (const [gpus, link] of [[8, NVLINK], [64, INFINIBAND]] as const) {
    const r = ringAllReduceSeconds(bytes, gpus, link, buckets);
    console.log(`\n${gpus} H100, ring over ${link.name}: busBW ${(link.nominalGBs * link.efficiency).toFixed(0)} GB/s (${link.efficiency * 100}% of ${link.nominalGBs}), hop latency ${link.hopMicroseconds} µs`);
    console.log(`  per GPU per step: ${(r.volume / 1e6).toFixed(1)} MB sent and received; all-reduce ${(r.seconds * 1e3).toFixed(2)} ms`);
    for (const rate of values.rate.map(Number)) {
      const compute = batch / rate;
      const efficiency = compute / (compute + r.seconds);
      console.log(`  at ${rate} images/s per GPU (step ${(compute * 1e3).toFixed(1)} ms): ${(efficiency * 100).toFixed(1)}% scaling efficiency, ${Math.round(gpus * batch / (compute + r.seconds))} images/s in all`);
    }
  }
}

main();
