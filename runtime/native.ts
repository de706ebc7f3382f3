// The only file that loads the native addon (runtime/build/addon/Release/nincc.node, built by cmake-js from
// runtime/binding/) and the typed declaration of its raw surface. Friendly validation lives in
// the TS layer above; this file only finds, loads and types the addon.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from '../compiler/package-root.js';

export type SpaceName = 'param' | 'grad' | 'momentum' | 'state' | 'fixed' | 'act';
export type DType = 'f32' | 'i32';

/** A buffer in one arena space, in 4-byte elements; for `act`, offset and size are per image. */
export interface NativeBufferRef {
  space: SpaceName;
  offset: number;
  size: number;
  dtype: DType;
}

export interface NativeTensorInfo {
  name: string;
  shape: number[];
  offset: number;
  size: number;
  init: { kind: 'uniform' | 'uniform01' | 'zeros' | 'ones'; bound?: number };
  torch?: { index: number; field: string };
  layer: number;
}

export interface NativeProgramInfo {
  inputs: Record<string, NativeBufferRef>;
  outputs: Record<string, NativeBufferRef>;
  /** the number of kernel steps */
  steps: number;
}

export interface NativeModelInfo {
  model: string;
  sourceHash: string;
  /** the nincc version that wrote the plan ('' when absent) */
  nincc: string;
  device: string;
  /** the hardware under the device: the GPU's name on cuda (cuDeviceGetName), else the device's name */
  hardware: string;
  maxBatch: number;
  input: number[];
  output: number[];
  classes: number;
  /** space sizes in elements as plan.json gives them (act per image) */
  spaces: Record<SpaceName, number>;
  params: NativeTensorInfo[];
  state: NativeTensorInfo[];
  programs: Record<string, NativeProgramInfo>;
}

/**
 * A model loaded on one device. While a run() is in flight every other call throws (and a
 * second run() rejects): await it first. Errors from the runtime carry code 'ERR_NINCC_RUNTIME';
 * wrongly typed arguments throw TypeError.
 */
/**
 * Gradients reduced across ranks by run() itself (runtime/core/gradient_reducer.h): each bucket of the
 * grad space scaled by `weight` and summed over all ranks in place, in the given order, overlapped
 * with the program's later steps when `overlap` (and the device allows it); then the state space.
 */
export interface NativeReduce {
  /** opened first: mpi.init(), or nccl.init() for a cuda model */
  backend: 'mpi' | 'nccl';
  /** offset, size pairs of grad-space ranges, in the order every rank reduces them */
  buckets: Float64Array;
  weight: number;
  overlap: boolean;
  state: boolean;
}

export interface NativeModel {
  info(): NativeModelInfo;
  run(program: string, n: number, scalars: Record<string, number>, seed?: number | bigint, reduce?: NativeReduce): Promise<void>;
  /** run() on the calling (JS) thread, settled when it returns: for calls too short to pay for the worker-thread hop (plan.json programs.infer inlineMaxBatch) */
  runInline(program: string, n: number, scalars: Record<string, number>, seed?: number | bigint): void;
  /** data holds exactly the input for n images; Float32Array for f32 inputs, Int32Array for i32 */
  setInput(program: string, name: string, data: Float32Array | Int32Array | Uint8Array, n: number): void;
  /**
   * The inputs of the next run of `program` on n images, allowed while a run is in flight: on cuda their
   * host→device copy overlaps it (docs/design.md#staged-input); at most two batches staged, not yet run.
   */
  stageInputs(program: string, n: number, inputs: Record<string, Float32Array | Int32Array | Uint8Array>): void;
  /** drops the staged batches no run has taken; returns how many; refused while a run is in flight */
  discardStaged(): number;
  /** an Int32Array for i32 outputs, else a Float32Array */
  getOutput(program: string, name: string, n: number): Float32Array | Int32Array;
  read(space: SpaceName, offset: number, count: number): Float32Array;
  write(space: SpaceName, offset: number, data: Float32Array): void;
  /** frees the arena and unloads the kernel library now; later calls throw */
  dispose(): void;
  /** per-launch timing on the device (nincc tune on a GPU): while on, each launch is bracketed by timing events; false where the device cannot (only cuda can) */
  timeLaunches(on: boolean): boolean;
  /** the launches timed since the last call, in launch order, once finished: each kernel's µs between the events around it */
  launchTimes(): { kernel: string; micros: number }[];
}

/** Open MPI's collectives, loaded at run time by init() (runtime/distributed/mpi.ts); each call is synchronous. */
export interface NativeMpi {
  /** dlopens libmpi.so.40 (or $NINCC_MPI_LIBRARY) and initialises MPI once per process */
  init(): { rank: number; size: number };
  /** in place: the element-wise sum over every rank */
  allreduceSum(data: Float32Array | Float64Array): void;
  /** every rank's bytes (all the same length), concatenated in rank order */
  allgather(bytes: Uint8Array): Uint8Array;
  barrier(): void;
  /** starts the hung-rank watchdog: every rank calls it once; a rank silent for `seconds` ends them all (MPI_Abort) */
  watch(seconds: number): void;
  /** stops the watchdog, then MPI_Finalize */
  finalize(): void;
  /** MPI_Abort: mpirun ends every rank; does not return */
  abort(code: number): never;
  /** seconds the last run() with a reduce argument spent in its collectives, and waited for them after the program */
  lastReduce(): { reducing: number; exposed: number };
}

/** NCCL, loaded at run time (libnccl.so.2 or $NINCC_NCCL_LIBRARY) by the first call; each throws naming what to install when it is missing. */
export interface NativeNccl {
  /** ncclGetUniqueId: 128 bytes, made on rank 0 */
  uniqueId(): Uint8Array;
  /** ncclCommInitRank with rank 0's id: once per process */
  init(rank: number, size: number, id: Uint8Array): void;
  /** NCCL's version code (22105 for 2.21.5) */
  version(): number;
}

export interface NativeAddon {
  /** the kernel ABI this runtime loads: 'nincc-cpu-2' */
  abi: string;
  /** 'cpu', 'emu', and 'cuda' where libcuda.so.1 loads and sees a GPU */
  devices(): string[];
  /** the name of the GPU the cuda device opens (cuDeviceGetName, e.g. "NVIDIA H100 80GB HBM3"); throws why not where there is none */
  cudaGpuName(): string;
  load(dir: string, device: string): NativeModel;
  /** what the cpu and emu devices of this process hold now, and how many allocations a device had to
   *  free itself at teardown because their owner never released them (0 when every arena frees its spaces) */
  hostMemory(): { liveBytes: number; liveAllocations: number; reclaimedAtTeardown: number };
  mpi: NativeMpi;
  nccl: NativeNccl;
}

export const ADDON_NOT_BUILT_MESSAGE =
  'the native addon is not built: run `npm install` (needs cmake and g++)';

/** Where `npm run build:native` puts the addon file `name`: <package root>/runtime/build/addon/Release/<name>. */
export function builtAddonPath(name: string): string {
  return join(packageRoot(), 'runtime', 'build', 'addon', 'Release', name);
}

/** Where the addon is expected: <package root>/runtime/build/addon/Release/nincc.node. */
export function nativeAddonPath(): string {
  return builtAddonPath('nincc.node');
}

let loaded: NativeAddon | undefined;

/** Loads the addon once per process; throws a clear error when it is missing or fails to load. */
export function loadNative(): NativeAddon {
  if (loaded) return loaded;
  const path = nativeAddonPath();
  if (!existsSync(path)) throw new Error(`${ADDON_NOT_BUILT_MESSAGE} (looked for ${path})`);
  const require = createRequire(import.meta.url);
  try {
    loaded = require(path) as NativeAddon;
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new Error(`cannot load the native addon ${path}: ${why}; rebuild it with \`npm install\``, { cause });
  }
  return loaded;
}
