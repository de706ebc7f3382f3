// Decodes image files for a model, as Torch7's eval path did: RGB (or gray) in [0,1], short side scaled to
// imageSize, a center crop at ceil((W−w)/2), then per-channel (x−mean)/std. Uses sharp (libvips).
import type { Metadata } from 'sharp';
import { sharp } from '../sharp.js';

export interface ImageGeometry {
  readonly channels: number; // 1 or 3
  readonly height: number; // the crop
  readonly width: number;
  readonly imageSize?: number; // short side before cropping; the crop size when absent
  readonly transform?: { readonly mean: readonly number[]; readonly std: readonly number[] };
}

/** The center crop's pixels, interleaved (H×W×channelsIn bytes, as sharp gives them). */
async function cropPixels(file: string, g: ImageGeometry): Promise<{ data: Buffer; channelsIn: number }> {
  if (g.channels !== 1 && g.channels !== 3) throw new Error(`${file}: models with ${g.channels} input channels cannot take image files (use --npy)`);
  let meta: Metadata;
  try {
    meta = await sharp()(file).metadata();
  } catch (e) {
    throw new Error(`${file}: not an image sharp can read (${(e as Error).message})`);
  }
  const w0 = meta.autoOrient?.width ?? meta.width ?? 0;
  const h0 = meta.autoOrient?.height ?? meta.height ?? 0;
  if (w0 < 1 || h0 < 1) throw new Error(`${file}: image has no size`);
  const short = g.imageSize ?? Math.min(g.height, g.width);
  const scale = short / Math.min(w0, h0);
  const w1 = Math.max(g.width, Math.round(w0 * scale));
  const h1 = Math.max(g.height, Math.round(h0 * scale));
  const left = Math.ceil((w1 - g.width) / 2);
  const top = Math.ceil((h1 - g.height) / 2);
  let pipeline = sharp()(file).rotate().resize(w1, h1, { fit: 'fill', kernel: 'linear' }).extract({ left, top, width: g.width, height: g.height });
  pipeline = g.channels === 1 ? pipeline.grayscale() : pipeline.toColorspace('srgb').removeAlpha();
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  return { data, channelsIn: info.channels };
}

/** One image as C×H×W float32, ready for `infer`. */
export async function decodeImageFile(file: string, g: ImageGeometry): Promise<Float32Array> {
  const { data, channelsIn } = await cropPixels(file, g);
  const plane = g.height * g.width;
  const out = new Float32Array(g.channels * plane);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < g.channels; c++) {
      const v = data[p * channelsIn + Math.min(c, channelsIn - 1)] / 255;
      out[c * plane + p] = g.transform ? (v - g.transform.mean[c]) / g.transform.std[c] : v;
    }
  }
  return out;
}

/** One image as H×W×C bytes, for a model that takes uint8 images (its first conv normalises; plan.json imageInput). */
export async function decodeImageBytes(file: string, g: ImageGeometry): Promise<Uint8Array> {
  const { data, channelsIn } = await cropPixels(file, g);
  const plane = g.height * g.width;
  const out = new Uint8Array(plane * g.channels);
  for (let p = 0; p < plane; p++) for (let c = 0; c < g.channels; c++) out[p * g.channels + c] = data[p * channelsIn + Math.min(c, channelsIn - 1)];
  return out;
}
