// What a data-parallel step adds to forward/backward, timed under mpirun (bench/RESULTS.md): the
// gradient buckets and BN statistics reduced by the TS path of the first slice (read out of the arena,
// scaled in JS, MPI_Allreduce, written back; kept here only for this comparison), by the runtime
// after backward, and by the runtime overlapped with backward. Each variant runs REPEATS steps of
// train_forward_backward on BATCH/N random images per rank, round-robin so that load drifts hit all.
// Per variant: the whole step's wall time, the time inside the reduction, and the part of it the
// step waited for after backward had finished ("exposed"; the runtime measures both, mpi.lastReduce).
//   npx tsc -p tsconfig.json && mpirun -np 2 node dist/bench/distributed-reduce.js ARTIFACT [REPEATS] [BATCH] [BUCKET_ELEMENTS]
import { DEFAULT_BUCKET_ELEMENTS, nativeReduce } from '../runtime/distributed/data-parallel.js';
import type { Communicator } from '../runtime/distributed/communicator.js';
import { openMpiWorld } from '../runtime/distributed/mpi.js';
import { gradientBuckets, rankShare, type Bucket } from '../runtime/distributed/shard.js';
import { load, type Model } from '../runtime/model.js';
import { loadNative } from '../runtime/native.js';
import { refuseStaleAddon } from './addon-fresh.js';

/** The first slice's reduction: through JS copies of each bucket. */
function reduceInJs(model: Model, comm: Communicator, weight: number, buckets: readonly Bucket[]): void {
  for (const b of buckets) {
    const g = model.readSpace('grad', b.offset, b.size);
    if (weight !== 1) for (let i = 0; i < g.length; i++) g[i] *= weight;
    comm.allreduceSum(g);
    model.writeSpace('grad', b.offset, g);
  }
  const s = model.readSpace('state', 0, model.info.spaces.state);
  for (let i = 0; i < s.length; i++) s[i] *= weight;
  comm.allreduceSum(s);
  model.writeSpace('state', 0, s);
}

type Variant = 'backward alone' | 'TS reduce after' | 'native after' | 'native overlapped';
const VARIANTS: readonly Variant[] = ['backward alone', 'TS reduce after', 'native after', 'native overlapped'];

async function main(): Promise<void> {
  refuseStaleAddon();
  const [artifact, repeatsArg, batchArg, bucketArg] = process.argv.slice(2);
  if (!artifact) throw new Error('usage: mpirun -np N node dist/bench/distributed-reduce.js ARTIFACT [REPEATS] [BATCH] [BUCKET_ELEMENTS]');
  const repeats = Number(repeatsArg ?? 50);
  const batch = Number(batchArg ?? 64);
  const comm = openMpiWorld();
  const model = await load(artifact, { seed: 1 });
  const buckets = gradientBuckets(model.info.params, Number(bucketArg ?? DEFAULT_BUCKET_ELEMENTS));
  const n = rankShare(batch, comm.rank, comm.size).count;
  const weight = n / batch;
  const perImage = model.info.input.reduce((a, b) => a * b, 1);
  const images = Float32Array.from({ length: n * perImage }, (_, i) => Math.sin(i * 0.37 + comm.rank));
  const labels = Int32Array.from({ length: n }, (_, i) => (i * 7 + comm.rank) % model.info.classes);
  const mpi = loadNative().mpi;
  const ms = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e6;
  /** One step; returns the reduction's { reducing, exposed } milliseconds. */
  const step = async (v: Variant): Promise<{ reducing: number; exposed: number }> => {
    let t = { reducing: 0, exposed: 0 };
    if (v === 'backward alone') await model.forwardBackward(images, labels);
    else if (v === 'TS reduce after') {
      await model.forwardBackward(images, labels);
      const started = process.hrtime.bigint();
      reduceInJs(model, comm, weight, buckets);
      t = { reducing: ms(started), exposed: ms(started) };
    } else {
      await model.forwardBackward(images, labels, nativeReduce(buckets, weight, v === 'native overlapped'));
      const last = mpi.lastReduce();
      t = { reducing: last.reducing * 1e3, exposed: last.exposed * 1e3 };
    }
    comm.allreduceSum(new Float64Array(4)); // the step's tally: every variant ends the step in step with the others
    return t;
  };
  const total = new Map<Variant, { step: number; reducing: number; exposed: number }>(VARIANTS.map((v) => [v, { step: 0, reducing: 0, exposed: 0 }]));
  for (const v of VARIANTS) for (let i = 0; i < 3; i++) await step(v);
  for (let r = 0; r < repeats; r++)
    for (const v of VARIANTS) {
      const started = process.hrtime.bigint();
      const t = await step(v);
      const sum = total.get(v)!;
      total.set(v, { step: sum.step + ms(started), reducing: sum.reducing + t.reducing, exposed: sum.exposed + t.exposed });
    }
  if (comm.rank === 0) {
    const floats = model.info.spaces.grad + model.info.spaces.state;
    console.log(`${model.info.model}: ${comm.size} ranks × ${n} images, ${buckets.length} bucket(s), ${floats} floats reduced per step; mean of ${repeats} steps each, interleaved:`);
    for (const v of VARIANTS) {
      const t = total.get(v)!;
      const mean = (x: number) => (x / repeats).toFixed(2);
      console.log(`  ${v.padEnd(18)} step ${mean(t.step)} ms${v === 'backward alone' ? '' : `, reducing ${mean(t.reducing)} ms, exposed after backward ${mean(t.exposed)} ms`}`);
    }
  }
  await model.dispose();
  comm.finalize();
}

void main();
