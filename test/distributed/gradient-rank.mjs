// One rank of the gradient check in test/distributed-train.test.ts: under mpirun, every rank takes its
// share of one global batch (the first COUNT training images), runs forward/backward with the runtime's
// bucketed all-reduce (overlapped with backward; OVERLAP=0 in the environment: after it); rank 0 writes the reduced grad space (raw float32) to OUT. Each rank also receives rank 0's
// stand-in for an NCCL unique id through shareFromRank0 and writes it to OUT.id<rank>.
// Usage: mpirun -np 2 node test/distributed/gradient-rank.mjs ARTIFACT DATA COUNT OUT
import { writeFileSync } from 'node:fs';
import { loadLabelledImages } from '../../dist/runtime/dataset.js';
import { load } from '../../dist/runtime/model.js';
import { nativeReduce, shardOf } from '../../dist/runtime/distributed/data-parallel.js';
import { openBackend } from '../../dist/runtime/distributed/backend.js';
import { openMpiWorld } from '../../dist/runtime/distributed/mpi.js';
import { gradientBuckets } from '../../dist/runtime/distributed/shard.js';

const [artifact, data, countArg, out] = process.argv.slice(2);
const comm = openMpiWorld();
const model = await load(artifact, { seed: 7 });
const set = loadLabelledImages(data, 'train', model.plan.transform, Number(countArg));
const mine = shardOf({ images: set.images, labels: set.labels, count: set.count }, comm.rank, comm.size);
// Small buckets, so that the check goes through many collectives and their boundaries.
const buckets = gradientBuckets(model.info.params, 4096);
await model.forwardBackward(mine.images, mine.labels, nativeReduce(buckets, mine.count / set.count, process.env.OVERLAP !== '0'));
if (comm.rank === 0) writeFileSync(out, model.readSpace('grad', 0, model.info.spaces.grad));
await model.dispose();
const standIn = {
  uniqueId() {
    if (comm.rank !== 0) throw new Error(`rank ${comm.rank} was asked to make the unique id`);
    return new Uint8Array(128).map((_, i) => (i * 37 + process.pid) & 255);
  },
  init(rank, size, id) {
    if (rank !== comm.rank || size !== comm.size) throw new Error(`init(${rank}, ${size}) on rank ${comm.rank} of ${comm.size}`);
    writeFileSync(`${out}.id${comm.rank}`, id);
  },
};
const backend = openBackend(comm, 'cuda', standIn);
if (backend !== 'nccl') throw new Error(`a cuda model's backend is ${backend}, not nccl`);
comm.finalize();
