// The package entry: `import { load } from 'nincc'`. Everything a user needs is exported here; docs/api.md describes it.
export { load, Model, scoreOutputs, syntheticImages, CHECKPOINT_FORMAT, type CheckpointMeta, type Device, type Evaluation, type Images, type LoadOptions, type PlanExtras, type TrainingSpace, type TrainStepOptions } from './model.js';
export { ErrorCodes, InvalidArgumentError, isNinccError, NinccError, OutOfRangeError, type ErrorCode } from './errors.js';
export { train, regimeAt, epochOrder, type EpochRecord, type TrainOptions } from './trainer.js';
export { openMpiWorld } from './distributed/mpi.js';
export { launchedRank, type Communicator } from './distributed/communicator.js';
export { DistributedError, type DataParallel } from './distributed/data-parallel.js';
export { openBackend, type NcclBootstrap, type ReduceBackend } from './distributed/backend.js';
export type { NativeModelInfo, NativeTensorInfo, NativeProgramInfo, NativeBufferRef, SpaceName, DType } from './native.js';
export { build, SpecError, type BuildOptions, type BuiltArtifact } from './build.js';
export { compileSpec } from '../compiler/pipeline.js';
// buildArtifact is synchronous (it runs g++ in this thread); build() is the same in a worker.
export { buildArtifact, type BuildResult, type Target } from '../compiler/build.js';
