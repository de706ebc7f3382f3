// A batch stream gathered into copies of its images and labels, so two readers' streams can be compared.
import type { Batch, Images } from '../../runtime/dataset.js';

async function gather<T extends Images>(it: AsyncIterable<Batch>, is: (x: Images) => x is T, what: string): Promise<{ images: T[]; labels: number[][] }> {
  const images: T[] = [];
  const labels: number[][] = [];
  for await (const b of it) {
    if (!is(b.images)) throw new Error(`collect: expected ${what} batches, got a ${b.images.constructor.name}`);
    images.push(b.images.slice() as T);
    labels.push([...b.labels]);
  }
  return { images, labels };
}

/** A float stream's batches (normalised N×C×H×W). */
export const collect = (it: AsyncIterable<Batch>) => gather(it, (x): x is Float32Array => x instanceof Float32Array, 'float32');

/** A uint8 stream's batches (N×H×W×C crop bytes, for a model that takes uint8 images). */
export const collectBytes = (it: AsyncIterable<Batch>) => gather(it, (x): x is Uint8Array => x instanceof Uint8Array, 'uint8');

/** A uint8 batch (N×H×W×C) normalised per channel, (v/255 − mean)/std, into the float path's N×C×H×W layout. */
export function normaliseBytes(bytes: Uint8Array, crop: { readonly channels: number; readonly height: number; readonly width: number }, t: { readonly mean: readonly number[]; readonly std: readonly number[] }): Float32Array {
  const { channels: c, height: h, width: w } = crop;
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const ch = i % c, pixel = Math.floor(i / c) % (h * w), image = Math.floor(i / (c * h * w));
    out[(image * c + ch) * h * w + pixel] = (bytes[i] / 255 - t.mean[ch]) / t.std[ch];
  }
  return out;
}
