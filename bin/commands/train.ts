// `nincc train FILE|DIR --data …`: trains with the spec's recipe, evaluating and checkpointing every epoch,
// on Fashion-MNIST in memory or an ImageNet folder streamed through the decode workers.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load, type Device, type Model } from '../../runtime/model.js';
import { isFashionMnistData, loadLabelledImages, type EvalSource, type LabelledImages, type TrainSource } from '../../runtime/dataset.js';
import { CHECKPOINT_FILE, train, TrainingError, type TestPlan } from '../../runtime/trainer.js';
import { trainProgress } from '../train-progress.js';
import { defaultWorkerCount } from '../../runtime/imagenet/decode-pool.js';
import { DataLayoutError, openImageNetFolder, recordClassList } from '../../runtime/imagenet/folder.js';
import { imageInput, openImageSources } from '../../runtime/imagenet/model-input.js';
import { isPackedDataset } from '../../runtime/imagenet/pack-format.js';
import { checkPackedImageSize, openPackedDataset } from '../../runtime/imagenet/packed.js';
import { SAMPLINGS, type Sampling } from '../../runtime/imagenet/sampler.js';
import { intOption, numberOption, onePositional, stringOption, UsageError, type Command, type ParsedArgs } from '../command.js';
import { checkFashionInput, inputOption, INPUT_HELP, type InputChoice, prepareArtifact, precisionOption, PRECISION_HELP } from '../artifact-arg.js';
import type { Precision } from '../../compiler/ir.js';
import { launchedRank, type Communicator } from '../../runtime/distributed/communicator.js';
import { DEFAULT_RANK_TIMEOUT_SECONDS, openMpiWorld } from '../../runtime/distributed/mpi.js';
import { openBackend, REDUCE_BACKENDS, type ReduceBackend } from '../../runtime/distributed/backend.js';
import { DEFAULT_BUCKET_ELEMENTS, DistributedError } from '../../runtime/distributed/data-parallel.js';
import { loadNative } from '../../runtime/native.js';

interface Inputs {
  readonly train: TrainSource | LabelledImages;
  readonly test: EvalSource | LabelledImages;
  readonly describe: string;
  readonly close: () => Promise<void>;
}

/** The spec's train block as plan.json carries it, with the optional epochSize. */
function epochSizeOf(model: Model): number | undefined {
  return (model.plan.train as { epochSize?: number } | undefined)?.epochSize;
}

/** Every option checked before anything slow (a build, loading data), so a typo costs nothing. */
interface TrainArgs {
  readonly target: string;
  readonly data: string;
  readonly fashion: boolean;
  readonly device?: Device;
  readonly batch?: number;
  readonly epochs?: number;
  readonly seed: number;
  readonly out?: string;
  readonly limit?: number;
  readonly epochSize?: number;
  readonly sampling: Sampling;
  readonly workers?: number;
  readonly prefetch?: number;
  readonly test: TestPlan;
  readonly resume: boolean;
  readonly quiet: boolean;
  readonly syncCheck: number;
  readonly overlap: boolean;
  readonly rankTimeout: number;
  readonly reduceWith?: ReduceBackend;
  readonly bucketElements?: number;
  readonly precision?: Precision;
  readonly input?: InputChoice;
  readonly gpuPerRank?: string;
}

const DEVICES: readonly Device[] = ['cpu', 'emu', 'cuda'];

/** --rank-timeout: positive seconds (the watchdog's heartbeat period is an eighth of it). */
function rankTimeoutOption(args: ParsedArgs): number {
  const seconds = numberOption(args, 'rank-timeout') ?? DEFAULT_RANK_TIMEOUT_SECONDS;
  if (!(seconds > 0 && seconds <= 1e6)) throw new UsageError(`--rank-timeout must be a number of seconds above 0 (and at most 1e6), got ${seconds}`);
  return seconds;
}

function reduceWithOption(args: ParsedArgs): ReduceBackend | undefined {
  const v = stringOption(args, 'reduce-with');
  if (v !== undefined && !REDUCE_BACKENDS.includes(v as ReduceBackend)) throw new UsageError(`--reduce-with must be ${REDUCE_BACKENDS.join(' or ')}, got '${v}'`);
  return v as ReduceBackend | undefined;
}

/** --gpu-per-rank: the GPU ordinal of each local rank, e.g. "0,1" (the runtime's gpu_choice.cc checks them against the GPUs it sees). */
function gpuPerRankOption(args: ParsedArgs): string | undefined {
  const v = stringOption(args, 'gpu-per-rank');
  if (v !== undefined && !/^\d{1,6}(,\d{1,6})*$/.test(v)) throw new UsageError(`--gpu-per-rank must list a GPU ordinal per local rank, e.g. 0,1, got '${v}'`);
  return v;
}

function parseTrainArgs(args: ParsedArgs): TrainArgs {
  const target = onePositional(args, trainCommand, 'spec file or artifact directory');
  const data = stringOption(args, 'data');
  if (!data) throw new UsageError("--data is required (e.g. --data fashion-mnist)");
  if (data !== 'fashion-mnist' && !existsSync(data)) {
    throw new UsageError(`--data ${data}: no such file or directory (expected 'fashion-mnist', a directory of Fashion-MNIST IDX files, an ImageNet folder with train/ and val/, or a dataset 'nincc pack' wrote)`);
  }
  const fashion = isFashionMnistData(data);
  if (fashion && (args.values['epoch-size'] !== undefined || args.values.sampling !== undefined)) throw new UsageError('--epoch-size and --sampling apply to ImageNet folders; Fashion-MNIST trains in whole passes');
  const input = inputOption(args);
  if (fashion) checkFashionInput(input);
  if (!fashion && args.values.limit !== undefined) throw new UsageError('--limit applies to Fashion-MNIST; for an ImageNet folder use --epoch-size N');
  const device = stringOption(args, 'device');
  if (device !== undefined && !DEVICES.includes(device as Device)) throw new UsageError(`--device must be ${DEVICES.join(', ')}, got '${device}'`);
  const sampling = stringOption(args, 'sampling') ?? 'balanced';
  if (!SAMPLINGS.includes(sampling as Sampling)) throw new UsageError(`--sampling must be ${SAMPLINGS.join(' or ')}, got '${sampling}'`);
  const noTest = Boolean(args.values['no-test']);
  const testEvery = intOption(args, 'test-every');
  const testLimit = intOption(args, 'test-limit');
  if (noTest && (testEvery !== undefined || testLimit !== undefined)) throw new UsageError('--no-test contradicts --test-every and --test-limit');
  const opt = <T>(name: string, v: T | undefined) => (v !== undefined ? { [name]: v } : {});
  return {
    target,
    data,
    fashion,
    ...opt('device', device as Device | undefined),
    ...opt('precision', precisionOption(args)),
    ...opt('input', input),
    ...opt('batch', intOption(args, 'batch')),
    ...opt('epochs', intOption(args, 'epochs')),
    seed: intOption(args, 'seed', 0) ?? 1,
    ...opt('out', stringOption(args, 'out')),
    ...opt('limit', intOption(args, 'limit')),
    ...opt('epochSize', intOption(args, 'epoch-size')),
    sampling: sampling as Sampling,
    ...opt('workers', intOption(args, 'workers')),
    ...opt('prefetch', intOption(args, 'prefetch')),
    test: { every: noTest ? 0 : testEvery ?? 1, ...(testLimit !== undefined ? { limit: testLimit } : {}) },
    resume: Boolean(args.values.resume),
    quiet: Boolean(args.values.quiet),
    syncCheck: intOption(args, 'sync-check', 0) ?? 0,
    overlap: !args.values['no-overlap'],
    rankTimeout: rankTimeoutOption(args),
    ...opt('reduceWith', reduceWithOption(args)),
    ...opt('bucketElements', intOption(args, 'bucket-elements')),
    ...opt('gpuPerRank', gpuPerRankOption(args)),
  };
}

/** "16", or "12–13" when the ranks' shares of a batch differ. */
function sharesOf(batch: number, ranks: number): string {
  const low = Math.floor(batch / ranks);
  return batch % ranks === 0 ? String(low) : `${low}–${low + 1}`;
}

/** The MPI world when mpirun started this process as one of several ranks (docs/distributed.md). */
function distributedWorld(rankTimeout: number): Communicator | undefined {
  const launched = launchedRank(process.env);
  if (!launched || launched.size === 1) return undefined;
  const world = openMpiWorld({ rankTimeout });
  if (world.size !== launched.size) throw new DistributedError(`OMPI_COMM_WORLD_SIZE is ${launched.size} but MPI sees ${world.size} rank${world.size === 1 ? '' : 's'}: start the ranks with mpirun -np ${launched.size}`);
  return world;
}

/** The device an artifact directory was built for: cuda or emu when it carries their library, else cpu. */
export function artifactDevice(dir: string): Device {
  const plan = JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as { libraries?: Record<string, string> };
  const libraries = plan.libraries ?? {};
  return 'cuda' in libraries ? 'cuda' : 'emu' in libraries ? 'emu' : 'cpu';
}

function fashionInputs(model: Model, a: TrainArgs): Inputs {
  const transform = model.plan.transform;
  const trainSet = loadLabelledImages(a.data, 'train', transform, a.limit);
  const testSet = loadLabelledImages(a.data, 'test', transform);
  if (trainSet.shape.join('x') !== model.info.input.join('x')) throw new UsageError(`${a.data} has ${trainSet.shape.join('x')} images but the model's input is ${model.info.input.join('x')}`);
  if (epochSizeOf(model) !== undefined) process.stderr.write(`note: the spec's epochSize applies to ImageNet folders; Fashion-MNIST trains in whole passes\n`);
  return { train: trainSet, test: testSet, describe: `${trainSet.count} images (${trainSet.name}), testing on ${testSet.count}`, close: async () => {} };
}

/** An ImageNet folder, or a dataset `nincc pack` wrote (read from its shards with the same sampling and crops). */
function imageNetInputs(model: Model, a: TrainArgs, runDir: string): Inputs {
  const packed = isPackedDataset(a.data) ? openPackedDataset(a.data) : undefined;
  const folder = packed ?? openImageNetFolder(a.data);
  const classes = folder.train.classes.length;
  if (classes !== model.info.classes) throw new DataLayoutError(`${folder.train.dir} has ${classes} ${packed ? 'classes' : 'class directories'} but model ${model.info.model} has ${model.info.classes} outputs`);
  const g = imageInput(model.info.input, model.plan.imageSize, model.plan.transform, model.plan.imageInput);
  if (g.warning) process.stderr.write(`warning: ${g.warning}\n`);
  if (packed) checkPackedImageSize(packed, g.imageSize);
  const epochSize = a.epochSize ?? epochSizeOf(model);
  const workers = a.workers ?? defaultWorkerCount();
  mkdirSync(runDir, { recursive: true });
  recordClassList(runDir, folder.train.classes, a.resume);
  const s = openImageSources(g, folder, { workers, prefetch: a.prefetch ?? 2, sampling: a.sampling, ...(epochSize !== undefined ? { epochSize } : {}), ...(packed ? { shards: packed.shards } : {}) });
  const epochs = epochSize !== undefined ? `epochs of ${epochSize} batches sampled ${a.sampling}` : 'whole passes';
  const from = packed ? `packed in ${packed.shards.length} shards at ${packed.index.imageSize}` : 'decode';
  const crops = g.output === 'u8' ? 'uint8 crops, normalised by the first conv' : 'float32 crops';
  return {
    train: s.train!,
    test: s.val,
    describe: `${folder.train.files.length} images in ${classes} classes (${folder.train.dir}; ${epochs}; ${from}; ${crops}; ${workers} decode workers), testing on ${folder.val.files.length} (${folder.val.dir})`,
    close: () => s.pool.close(),
  };
}

function describeTest(t: TestPlan): string {
  if (t.every === 0) return 'no test pass';
  const on = t.limit !== undefined ? ` on the first ${t.limit} test images` : '';
  return t.every === 1 ? `testing after every epoch${on}` : `testing every ${t.every} epochs and after the last${on}`;
}

export const trainCommand: Command = {
  name: 'train',
  summary: "Train a model with its spec's recipe (batch, epochs, SGD with momentum, the lr/wd regime). Prints a progress bar, evaluates top-1/top-5 on the test split and writes an atomic checkpoint after every epoch.",
  usage: 'FILE|DIR --data fashion-mnist|PATH [-o RUN_DIR] [--epochs N] [--batch N] [--epoch-size N] [--sampling balanced|uniform] [--device cpu|emu|cuda] [--precision fp32|tf32|bf16] [--input u8|f32] [--seed S] [--test-every N] [--test-limit N] [--no-test] [--resume] [--sync-check N] [--no-overlap] [--bucket-elements N] [--rank-timeout S] [--reduce-with mpi|nccl] [--gpu-per-rank LIST]',
  details:
    'FILE is a .model spec (built first, cached) or DIR a built artifact. RUN_DIR receives checkpoint.safetensors, log.jsonl (one JSON line per epoch) and, for image folders, classes.txt.\n' +
    "An ImageNet folder (PATH/train/<class>/*.JPEG, PATH/val/<class>/*.JPEG) is decoded in worker threads with donkey.lua's preprocessing: short side to the spec's imageSize, random crop and flip for training, center crop for validation, the spec's transform. Unreadable files are skipped, replaced and reported.\n" +
    "A directory 'nincc pack' wrote (it has index.json) is read from its shards instead: the same images, sampling, crops and flips for the same seed, without the per-file opens and the full-size decodes (docs/packed-dataset.md).\n" +
    'Under mpirun -np N (Open MPI) the ranks train data-parallel: --batch stays the global batch, split between the ranks, and rank 0 writes RUN_DIR (docs/distributed.md).',
  options: {
    data: { type: 'string', value: 'DATA', help: "'fashion-mnist' (the system copy), a directory of Fashion-MNIST IDX files, an ImageNet folder with train/ and val/, or a packed dataset (nincc pack)" },
    out: { type: 'string', short: 'o', value: 'RUN_DIR', help: 'where checkpoints and the log go (default: runs/<model>)' },
    epochs: { type: 'string', value: 'N', help: "number of epochs (default: the spec's train block)" },
    batch: { type: 'string', value: 'N', help: "batch size (default: the spec's train block)" },
    'epoch-size': { type: 'string', value: 'N', help: "batches per epoch (default: the spec's epochSize; whole passes without one). Image folders only" },
    sampling: { type: 'string', value: 'RULE', help: 'with an epoch size: balanced (a class uniformly, then an image of it; Torch\'s default) or uniform (any image)' },
    workers: { type: 'string', value: 'N', help: `decode worker threads for image folders and packed datasets (default: cores − 1, here ${defaultWorkerCount()})` },
    prefetch: { type: 'string', value: 'N', help: 'batches decoded ahead of the one training (default 2)' },
    device: { type: 'string', value: 'DEV', help: 'cpu, emu (the generated CUDA on the SIMT emulator) or cuda; default: the device a DIR was built for, cpu for a spec FILE (which is built for --device)' },
    precision: { type: 'string', value: 'P', help: PRECISION_HELP },
    input: { type: 'string', value: 'T', help: INPUT_HELP },
    seed: { type: 'string', value: 'S', help: 'seed for init, shuffling, sampling, crops and dropout (default 1)' },
    limit: { type: 'string', value: 'N', help: 'use only the first N training images (Fashion-MNIST)' },
    resume: { type: 'boolean', help: 'continue from RUN_DIR/checkpoint.safetensors (the last finished epoch)' },
    'test-every': { type: 'string', value: 'N', help: 'score the test split every N epochs and after the last (default 1)' },
    'test-limit': { type: 'string', value: 'N', help: 'score only the first N test images (a quick check, e.g. on emu)' },
    'no-test': { type: 'boolean', help: 'no test pass at all' },
    quiet: { type: 'boolean', short: 'q', help: 'no progress bar' },
    'sync-check': { type: 'string', value: 'N', help: 'under mpirun: compare a digest of every rank\'s weights every N steps (default 0: at each epoch end only)' },
    'no-overlap': { type: 'boolean', help: 'under mpirun: sum the gradients after backward instead of while it runs (the same result, bitwise)' },
    'rank-timeout': { type: 'string', value: 'S', help: `under mpirun: end every rank when one has sent no heartbeat for S seconds (stopped, frozen, unreachable; default ${DEFAULT_RANK_TIMEOUT_SECONDS})` },
    'reduce-with': { type: 'string', value: 'LIB', help: 'under mpirun: mpi or nccl sums the gradients (default: nccl on cuda, mpi on cpu and emu)' },
    'bucket-elements': { type: 'string', value: 'N', help: `under mpirun: gradient floats summed per collective (default ${DEFAULT_BUCKET_ELEMENTS})` },
    'gpu-per-rank': { type: 'string', value: 'LIST', help: 'on cuda: the GPU of each rank on a machine by local rank, e.g. 2,3 (sets NINCC_GPU_PER_RANK; default: local rank k takes the k-th GPU CUDA_VISIBLE_DEVICES leaves, one per rank)' },
  },
  async run(args) {
    const a0 = parseTrainArgs(args);
    // Read by the cuda device when it opens its GPU (runtime/core/gpu_choice.h).
    if (a0.gpuPerRank !== undefined) process.env.NINCC_GPU_PER_RANK = a0.gpuPerRank;
    const comm = distributedWorld(a0.rankTimeout);
    if (!comm) return trainHere(a0);
    // Rank 0 speaks for the run; the others are quiet, and any failure ends every rank (no rank left waiting).
    const a = comm.rank === 0 ? a0 : { ...a0, quiet: true };
    try {
      const code = await trainHere(a, comm);
      comm.finalize();
      return code;
    } catch (e) {
      process.stderr.write(`nincc train: rank ${comm.rank} of ${comm.size}: ${e instanceof Error ? e.message : String(e)}\n`);
      return comm.abort(1);
    }
  },
};

/** One process's training run: the whole run, or rank `comm.rank` of a data-parallel one. */
async function trainHere(a: TrainArgs, comm?: Communicator): Promise<number> {
  // Rank 0 builds (or finds in the cache) first, so that ranks do not compile the same spec at once.
  if (comm && comm.rank !== 0) comm.barrier();
  // Image data takes uint8 crops by default (the spec is built so, or says why not); rank 0 alone says so.
  const dir = await prepareArtifact(a.target, {
    ...(a.batch ? { maxBatch: a.batch } : {}), quiet: a.quiet, device: a.device ?? 'cpu', ...(a.precision ? { precision: a.precision } : {}), ...(a.input ? { input: a.input } : {}),
    ...(a.fashion ? { floatData: 'Fashion-MNIST' } : { imageData: true }), ...(comm && comm.rank !== 0 ? { note: () => {} } : {}),
  });
  if (comm && comm.rank === 0) comm.barrier();
  // A built directory runs on the device it was built for unless --device says otherwise.
  const device = a.device ?? artifactDevice(dir);
  const model = await load(dir, { device, seed: a.seed });
  // Collective: every rank opens the reduction library here (NCCL: rank 0's unique id goes to all).
  const backend = comm ? openBackend(comm, device, loadNative().nccl, a.reduceWith) : undefined;
  let inputs: Inputs | undefined;
  const speaks = !comm || comm.rank === 0;
  // Ctrl-C: finish the step in flight, write a checkpoint, exit 130; a second Ctrl-C aborts at once.
  // Listening before the data loads: rank 0 says "training" only once its own data is loaded, and a
  // signal to another rank in between must not kill that rank outright.
  const stop = { requested: false };
  const onSigint = () => {
    if (stop.requested) process.exit(130);
    stop.requested = true;
    process.stderr.write('\nnincc train: interrupted; finishing the current step and writing a checkpoint (Ctrl-C again to abort)\n');
  };
  process.on('SIGINT', onSigint);
  try {
    const recipe = model.plan.train;
    const runDir = a.out ?? join('runs', model.info.model);
    const epochs = a.epochs ?? recipe?.epochs ?? 1;
    const batch = a.batch ?? recipe?.batch ?? Math.min(64, model.maxBatch);
    if (comm && batch < comm.size) throw new TrainingError(`batch ${batch} is smaller than the ${comm.size} ranks: each rank needs at least one image of every global batch`);
    inputs = a.fashion ? fashionInputs(model, a) : imageNetInputs(model, a, runDir);
    const ranks = comm ? `; ${comm.size} ranks of ${sharesOf(batch, comm.size)} images each` : '';
    if (speaks) process.stderr.write(`training ${model.info.model} on ${device}, ${inputs.describe}; ${epochs} epochs of batch ${batch}${ranks}, ${describeTest(a.test)}; run directory ${runDir}\n`);
    const result = await train(model, inputs.train, inputs.test, {
      epochs, batch, regime: recipe?.regime ?? [], momentum: recipe?.optimizer.momentum ?? 0.9, seed: a.seed,
      runDir, resume: a.resume, test: a.test, stop, ...(speaks ? { onEvent: trainProgress(process.stderr, a.quiet) } : {}),
      ...(comm ? { distributed: { comm, checkEvery: a.syncCheck, overlap: a.overlap, backend, ...(a.bucketElements ? { bucketElements: a.bucketElements } : {}) } } : {}),
    });
    if (!speaks) return result.stopped ? 130 : 0;
    if (result.alreadyFinished) {
      const f = result.alreadyFinished;
      process.stderr.write(`nincc train: nothing to do: ${f.checkpoint} already holds epoch ${f.epoch} of ${epochs}; to train further, pass a larger --epochs with --resume\n`);
      return 0;
    }
    if (result.stopped) {
      process.stderr.write(`nincc train: stopped; resume with: nincc train ${a.target} --data ${a.data} -o ${runDir} --resume\n`);
      return 130;
    }
    const last = result.records[result.records.length - 1];
    const checkpoint = join(runDir, CHECKPOINT_FILE);
    if (last && last.top1 !== undefined && last.top5 !== undefined) process.stdout.write(`top-1 ${(100 * last.top1).toFixed(2)}%  top-5 ${(100 * last.top5).toFixed(2)}%  (${last.evaluated} test images, after epoch ${last.epoch}); checkpoint ${checkpoint}\n`);
    else if (last) process.stdout.write(`not tested (--no-test); trained ${last.epoch} epochs; checkpoint ${checkpoint}\n`);
    return 0;
  } catch (e) {
    if (!comm && (e instanceof TrainingError || e instanceof DataLayoutError)) {
      process.stderr.write(`nincc train: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
    await inputs?.close();
    model.dispose();
  }
}
