// The package entry: `import { load } from 'nincc'`.
export { load, Model, scoreOutputs, type Device, type Evaluation, type LoadOptions, type TrainStepOptions } from './model.js';
export { train, regimeAt, epochOrder, type EpochRecord, type TrainOptions } from './trainer.js';
export { compileSpec } from '../compiler/pipeline.js';
export { buildArtifact } from '../compiler/build.js';
