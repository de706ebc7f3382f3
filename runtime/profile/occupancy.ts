// Blocks of one kernel resident on an SM at once, from what ptxas reports (registers per thread,
// static shared memory) and the launch (threads and dynamic shared memory per block): the time
// model's wave count. Limits common to sm_80 and sm_90 (CUDA C++ Programming Guide, "Compute
// Capabilities": 2048 threads, 32 blocks, 64 K registers per SM; the driver reserves 1 KB of
// shared memory per block); registers are allocated per warp in units of 256 (the CUDA Occupancy
// Calculator's allocation granularity).
import type { GpuSpec } from './gpus.js';

export interface KernelResources {
  readonly threadsPerBlock: number;
  readonly registersPerThread: number;
  readonly sharedBytesPerBlock: number;  // static (ptxas) + dynamic (launch)
}

export interface Occupancy {
  readonly blocksPerSm: number;
  /** Resident warps over the 64 an SM can hold. */
  readonly fraction: number;
  /** What stops one more block: threads, blocks, registers or shared memory. */
  readonly limitedBy: 'threads' | 'blocks' | 'registers' | 'shared';
}

const MAX_THREADS = 2048;
const MAX_BLOCKS = 32;
const REGISTERS = 65536;
const REGISTER_UNIT = 256;  // per warp
const RESERVED_SHARED = 1024;

export function occupancy(k: KernelResources, gpu: GpuSpec): Occupancy {
  if (k.threadsPerBlock < 1 || k.threadsPerBlock > 1024) throw new Error(`a block of ${k.threadsPerBlock} threads: CUDA allows 1 to 1024`);
  const warps = Math.ceil(k.threadsPerBlock / 32);
  const registersPerBlock = warps * Math.ceil((k.registersPerThread * 32) / REGISTER_UNIT) * REGISTER_UNIT;
  const limits = {
    threads: Math.floor(MAX_THREADS / (warps * 32)),
    blocks: MAX_BLOCKS,
    registers: registersPerBlock > 0 ? Math.floor(REGISTERS / registersPerBlock) : MAX_BLOCKS,
    shared: Math.floor(gpu.sharedBytesPerSm / (k.sharedBytesPerBlock + RESERVED_SHARED)),
  };
  const limitedBy = (Object.keys(limits) as (keyof typeof limits)[]).reduce((a, b) => (limits[b] < limits[a] ? b : a));
  const blocksPerSm = limits[limitedBy];
  if (blocksPerSm < 1) throw new Error(`the kernel does not fit on an SM (${limitedBy}): ${JSON.stringify(k)}`);
  return { blocksPerSm, fraction: (blocksPerSm * warps) / (MAX_THREADS / 32), limitedBy };
}

/** Resident blocks per SM of one launch (its block's threads, its dynamic shared memory) at ptxas's registers and static shared memory. */
export function launchResidentBlocks(launch: { readonly block: readonly number[]; readonly shared: number }, ptxas: { readonly registers: number; readonly sharedBytes: number }, gpu: GpuSpec): number {
  const threadsPerBlock = launch.block[0] * launch.block[1] * launch.block[2];
  return occupancy({ threadsPerBlock, registersPerThread: ptxas.registers, sharedBytesPerBlock: ptxas.sharedBytes + launch.shared }, gpu).blocksPerSm;
}
