// A packed dataset opened for reading: its two splits as the ImageLists the streaming sources take (so
// sampling, crops, flips and rank shards are the folder reader's, draw for draw), each image's record
// given by the index, and the shard paths the decode workers read from.
import { join } from 'node:path';
import { DataLayoutError, type ImageList } from './folder.js';
import { readPackIndex, SPLITS, type PackIndex, type Split } from './pack-format.js';

export interface PackedDataset {
  readonly dir: string;
  readonly index: PackIndex;
  readonly shards: readonly string[]; // paths, by place in the index
  readonly train: ImageList;
  readonly val: ImageList;
}

function splitList(dir: string, index: PackIndex, split: Split): ImageList {
  const t = index.splits[split];
  const n = t.name.length;
  if (n === 0) throw new DataLayoutError(`${join(dir, 'index.json')}: splits.${split} has no images`);
  const classes = index.classes;
  const classStart = new Int32Array(classes.length);
  const classCount = new Int32Array(classes.length);
  // The packer wrote each split in class order, as the folder lists it; the sampler's class ranges rely on it.
  for (let k = 0; k < n; k++) {
    if (k > 0 && t.label[k] < t.label[k - 1]) throw new DataLayoutError(`${join(dir, 'index.json')}: splits.${split}.label[${k}]: labels out of class order (the index was not written by nincc pack)`);
    classCount[t.label[k]]++;
  }
  for (let c = 1; c < classes.length; c++) classStart[c] = classStart[c - 1] + classCount[c - 1];
  if (split === 'train') {
    const empty = classCount.findIndex((x) => x === 0);
    if (empty >= 0) throw new DataLayoutError(`${join(dir, 'index.json')}: class '${classes[empty]}' has no training images`);
  }
  return {
    dir: join(dir, split),
    classes,
    files: t.name.map((name) => join(dir, split, name)),
    labels: Int32Array.from(t.label),
    classStart,
    classCount,
    skipped: [], // the sources nincc pack could not read are in the index (splits.*.skipped), not images here
    record: (i) => ({ shard: t.shard[i], offset: t.offset[i], length: t.length[i], width: t.width[i], height: t.height[i] }),
  };
}

/** Opens DIR's index (checked field by field, every shard's size against it); the bytes are checked as they are read. */
export function openPackedDataset(dir: string): PackedDataset {
  const index = readPackIndex(dir);
  const [train, val] = SPLITS.map((s) => splitList(dir, index, s));
  return { dir, index, shards: index.shards.map((s) => join(dir, s.file)), train, val };
}

/** The model's imageSize must not exceed the packed one: the detail above it was thrown away when packing. */
export function checkPackedImageSize(data: PackedDataset, imageSize: number): void {
  if (imageSize > data.index.imageSize) {
    throw new DataLayoutError(`${join(data.dir, 'index.json')}: images packed at short side ${data.index.imageSize}, but the model's imageSize is ${imageSize}: pack again with --image-size ${imageSize}`);
  }
}
