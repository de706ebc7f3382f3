// The MPI communicator: the addon's run-time-loaded Open MPI (runtime/core/mpi_library.cc). Opening it
// is the one place a distributed run can learn that Open MPI is missing, and says what to install.
import { ErrorCodes, NinccError } from '../errors.js';
import { loadNative } from '../native.js';
import type { Communicator } from './communicator.js';

/** The default of `nincc train --rank-timeout` (docs/distributed.md#start-up-checks-and-faults). */
export const DEFAULT_RANK_TIMEOUT_SECONDS = 60;

/**
 * The world of this process's ranks. With `rankTimeout` (seconds; every rank must pass the same) a
 * watchdog ends every rank when one sends no heartbeat for that long (runtime/core/mpi_library.h).
 */
export function openMpiWorld(options: { rankTimeout?: number } = {}): Communicator {
  let addon;
  try {
    addon = loadNative();
  } catch (e) {
    throw new NinccError(ErrorCodes.addon, (e as Error).message, { cause: e });
  }
  const mpi = addon.mpi;
  let world: { rank: number; size: number };
  try {
    world = mpi.init();
    if (options.rankTimeout !== undefined) mpi.watch(options.rankTimeout);
  } catch (e) {
    throw new NinccError(ErrorCodes.runtime, (e as Error).message, { cause: e });
  }
  return {
    rank: world.rank,
    size: world.size,
    allreduceSum: (data) => mpi.allreduceSum(data),
    allgather(bytes) {
      const all = mpi.allgather(bytes);
      return Array.from({ length: world.size }, (_, r) => all.subarray(r * bytes.length, (r + 1) * bytes.length));
    },
    barrier: () => mpi.barrier(),
    finalize: () => mpi.finalize(),
    abort: (code) => mpi.abort(code),
  };
}
