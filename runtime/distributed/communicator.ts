// What data-parallel training needs from the ranks' transport (MPI today, runtime/distributed/mpi.ts): sums,
// a byte exchange, a barrier. Plain and small so a test can stand in for it.

export interface Communicator {
  readonly rank: number;
  readonly size: number;
  /** In place: every rank ends with the element-wise sum over all ranks (same order of sums on every rank). */
  allreduceSum(data: Float32Array | Float64Array): void;
  /** Each rank's bytes (the same length on every rank), in rank order. */
  allgather(bytes: Uint8Array): Uint8Array[];
  barrier(): void;
  /** The end of a run that went well on every rank. */
  finalize(): void;
  /** Ends every rank now (a failure on one rank must not leave the others waiting in a collective). */
  abort(code: number): never;
}

/** The rank and world size mpirun (Open MPI) gives a process, or undefined outside mpirun. */
export function launchedRank(env: NodeJS.ProcessEnv): { rank: number; size: number } | undefined {
  const size = env.OMPI_COMM_WORLD_SIZE;
  const rank = env.OMPI_COMM_WORLD_RANK;
  if (size === undefined || rank === undefined) return undefined;
  const s = Number(size);
  const r = Number(rank);
  if (!Number.isInteger(s) || s < 1 || !Number.isInteger(r) || r < 0 || r >= s) {
    throw new Error(`OMPI_COMM_WORLD_RANK=${rank} / OMPI_COMM_WORLD_SIZE=${size}: not a rank of a world (mpirun sets these)`);
  }
  return { rank: r, size: s };
}

/**
 * Rank 0's bytes on every rank: how a GPU reducer's bootstrap token (NCCL's 128-byte ncclUniqueId) reaches
 * the other ranks. `make` runs on rank 0 only; every rank must pass the same `length`.
 */
export function shareFromRank0(comm: Communicator, length: number, make: () => Uint8Array): Uint8Array {
  const mine = comm.rank === 0 ? make() : new Uint8Array(length);
  if (mine.length !== length) throw new RangeError(`rank 0 made ${mine.length} bytes to share, not ${length}`);
  return Uint8Array.from(comm.allgather(mine)[0]);
}
