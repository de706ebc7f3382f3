// Which library sums a rank's gradients, and opening it on every rank: MPI for an arena in host
// memory (cpu, emu), NCCL for a cuda arena — rank 0 makes NCCL's unique id and MPI carries it to the
// others (docs/distributed.md#nccl). Plain functions over the Communicator and an NCCL bootstrap, so
// that a CPU test can stand MPI in for both.
import type { Communicator } from './communicator.js';
import { shareFromRank0 } from './communicator.js';

export type ReduceBackend = 'mpi' | 'nccl';
export const REDUCE_BACKENDS: readonly ReduceBackend[] = ['mpi', 'nccl'];

/** NCCL's bytes of an ncclUniqueId (NCCL_UNIQUE_ID_BYTES). */
export const NCCL_UNIQUE_ID_BYTES = 128;

/** What opening NCCL takes (the addon's `nccl` object; a test's stand-in). */
export interface NcclBootstrap {
  /** ncclGetUniqueId: called on rank 0 only */
  uniqueId(): Uint8Array;
  /** ncclCommInitRank: every rank, with rank 0's id */
  init(rank: number, size: number, id: Uint8Array): void;
}

/** The backend for a device: NCCL reduces in GPU memory, MPI in host memory; `requested` overrides (MPI on cuda stages through the host). */
export function backendFor(device: string, requested?: ReduceBackend): ReduceBackend {
  if (requested === 'nccl' && device !== 'cuda') throw new RangeError(`NCCL reduces GPU memory, and a ${device} model's gradients are in host memory: reduce them with mpi`);
  return requested ?? (device === 'cuda' ? 'nccl' : 'mpi');
}

/** Opens the backend on every rank (collective: every rank calls it at the same point) and says which it is. */
export function openBackend(comm: Communicator, device: string, nccl: NcclBootstrap, requested?: ReduceBackend): ReduceBackend {
  const backend = backendFor(device, requested);
  if (backend === 'nccl') nccl.init(comm.rank, comm.size, shareFromRank0(comm, NCCL_UNIQUE_ID_BYTES, () => nccl.uniqueId()));
  return backend;
}
