// What a model asks of the image loader, read from its plan: the crop (input C×H×W), the short side
// before cropping (imageSize), the per-channel transform, and whether the batches are uint8 (its first
// conv normalises, plan.json imageInput); and the pool and sources built from them.
import type { Transform } from '../dataset.js';
import { DecodePool } from './decode-pool.js';
import { identityTransform } from './donkey.js';
import type { ImageList } from './folder.js';
import type { Sampling } from './sampler.js';
import { ImageFolderEvalSource, ImageNetTrainSource, type Crop } from './sources.js';

export interface ImageInput {
  readonly crop: Crop & { readonly channels: 1 | 3 };
  readonly imageSize: number;
  readonly transform: Transform;
  /** u8: batches of H×W×C crop bytes, which the model's first conv normalises; f32: normalised C×H×W floats. */
  readonly output: 'f32' | 'u8';
  /** Set when the spec has no transform: the images then enter the network as plain [0, 1] values. */
  readonly warning?: string;
}

/** The loader geometry for a model's input; models whose input is not 1 or 3 image channels cannot take image folders. */
export function imageInput(input: readonly number[], imageSize: number | undefined, transform: Transform | undefined, u8?: { readonly dtype: 'u8' }): ImageInput {
  const [channels, height, width] = input;
  if (input.length !== 3 || (channels !== 1 && channels !== 3)) {
    throw new Error(`the model's input is ${input.join('x')}: image folders feed models with 1 or 3 channels (input CxHxW)`);
  }
  const size = imageSize ?? Math.max(height, width);
  if (size < Math.max(height, width)) throw new Error(`imageSize ${size} is smaller than the ${height}x${width} crop`);
  if (transform && (transform.mean.length !== channels || transform.std.length !== channels)) {
    throw new Error(`the spec's transform has ${transform.mean.length} means and ${transform.std.length} stds for ${channels} channels`);
  }
  return {
    crop: { channels, height, width },
    imageSize: size,
    transform: transform ?? identityTransform(channels),
    output: u8 ? 'u8' : 'f32',
    ...(transform ? {} : { warning: "the spec has no transform { mean … std … }: images enter the network as [0, 1] values (run 'nincc stats --data DIR' for one)" }),
  };
}

export interface ImageSources {
  readonly pool: DecodePool;
  readonly train?: ImageNetTrainSource;
  readonly val: ImageFolderEvalSource;
}

/** One worker pool feeding the training stream (when `train` is given) and the validation pass; `shards` when the lists are a packed dataset's. */
export function openImageSources(
  g: ImageInput,
  lists: { readonly train?: ImageList; readonly val: ImageList },
  o: { readonly workers: number; readonly prefetch: number; readonly epochSize?: number; readonly sampling: Sampling; readonly shards?: readonly string[] },
): ImageSources {
  const pool = new DecodePool({ workers: o.workers, imageSize: g.imageSize, crop: g.crop, transform: g.transform, ...(o.shards ? { shards: o.shards } : {}), ...(g.output === 'u8' ? { output: 'u8' } : {}) });
  const val = new ImageFolderEvalSource(pool, lists.val, { crop: g.crop, prefetch: o.prefetch });
  if (!lists.train) return { pool, val };
  const train = new ImageNetTrainSource(pool, lists.train, { crop: g.crop, sampling: o.sampling, prefetch: o.prefetch, ...(o.epochSize !== undefined ? { epochSize: o.epochSize } : {}) });
  return { pool, train, val };
}
