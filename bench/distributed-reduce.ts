// What a data-parallel step adds to a step: the bucketed gradient all-reduce and the BN statistics
// reduction of an artifact, timed alone under mpirun (bench/RESULTS.md).
//   npx tsc -p tsconfig.json && mpirun -np 2 node dist/bench/distributed-reduce.js ARTIFACT [REPEATS]
import { load } from '../runtime/model.js';
import { DEFAULT_BUCKET_ELEMENTS, reduceGradients, reduceState } from '../runtime/distributed/data-parallel.js';
import { openMpiWorld } from '../runtime/distributed/mpi.js';
import { gradientBuckets } from '../runtime/distributed/shard.js';

async function main(): Promise<void> {
  const [artifact, repeatsArg] = process.argv.slice(2);
  if (!artifact) throw new Error('usage: mpirun -np N node dist/bench/distributed-reduce.js ARTIFACT [REPEATS]');
  const repeats = Number(repeatsArg ?? 200);
  const comm = openMpiWorld();
  const model = await load(artifact);
  const buckets = gradientBuckets(model.info.params, DEFAULT_BUCKET_ELEMENTS);
  const weight = 1 / comm.size;
  const round = () => {
    reduceGradients(model, comm, weight, buckets);
    reduceState(model, comm, weight);
    comm.allreduceSum(new Float64Array(4)); // the step's tally
  };
  for (let i = 0; i < 10; i++) round();
  comm.barrier();
  const started = process.hrtime.bigint();
  for (let i = 0; i < repeats; i++) round();
  const ms = Number(process.hrtime.bigint() - started) / 1e6 / repeats;
  if (comm.rank === 0) {
    const floats = model.info.spaces.grad + model.info.spaces.state;
    console.log(`${model.info.model}: ${comm.size} ranks, ${buckets.length} bucket(s), ${floats} floats reduced per step: ${ms.toFixed(3)} ms per step (mean of ${repeats})`);
  }
  await model.dispose();
  comm.finalize();
}

void main();
