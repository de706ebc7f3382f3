// The arithmetic of imagenet-multiGPU.torch's donkey.lua, apart from decoding: the resize target, the
// random and center crop offsets, the flip, and (x − mean)/std into a C×H×W float32 tensor.
//
// Each rule below is what the Lua did, read from donkey.lua, torch/image and torch7:
// - loadImage: `image.scale(input, 256, 256 * H / W)` when W < H, else `image.scale(input, 256 * W / H, 256)`.
//   image.scale hands the float sizes to `src.new(C, height, width)`, whose sizes go through
//   luaL_checklong → lua_tointeger, a C cast on 64-bit LuaJIT: the long side is *truncated*.
//   256·long/short is one correctly rounded division of exact integers, so truncating it equals
//   integer division: 500×375 → 341×256, 300×200 → 384×256, 257×256 → 257×256, 64×64 → 256×256.
// - trainHook: `h1 = math.ceil(torch.uniform(1e-2, iH - oH))`, w1 likewise, then
//   `image.crop(input, w1, h1, w1 + oW, h1 + oH)` with 0-based starts. torch.uniform(a, b) is
//   a + (b − a)·u with u = mt19937/2^32 in [0, 1), so the offset is ceil(0.01 + (D − 0.01)·u) for
//   D = size − crop: every value in 1..D, never 0 (Torch's quirk, kept). For D = 0 Torch's crop would
//   run one pixel off the image and fail; here the only crop there is (offset 0) is taken.
//   The draws happen in that order: rows first, then columns, then the flip.
// - `if torch.uniform() > 0.5 then out = image.hflip(out) end`: flip when u > 0.5 (strictly).
// - testHook: w1 = ceil((iW − oW)/2), h1 = ceil((iH − oH)/2). (The Lua crops `h1 + oW` rows, the same
//   as h1 + oH for its square 224 crop; here the crop's own height is used.)
// - mean/std: `out[c]:add(-mean[c])` then `:div(std[c])` on values already scaled to [0, 1] by
//   image.load's `mul(1/255)`. Here (byte/255 − mean)/std is computed in float64 and rounded once to
//   float32, so results can differ from Torch's float32 chain by an ulp or two.

import type { Transform } from '../dataset.js';
export type { Transform };

export interface Size {
  readonly width: number;
  readonly height: number;
}


/** Where a crop starts (0-based) and whether it is mirrored. */
export interface CropPlacement {
  readonly x: number;
  readonly y: number;
  readonly flip: boolean;
}

/** The three uniform draws in [0, 1) that decide one training crop, in Torch's order. */
export interface CropDraws {
  readonly uY: number;
  readonly uX: number;
  readonly uFlip: number;
}

/** loadImage's resize target: the short side becomes imageSize, the long side imageSize·long/short truncated. */
export function scaledSize(width: number, height: number, imageSize: number): Size {
  if (!(width >= 1 && height >= 1)) throw new RangeError(`image of ${width}×${height} has no pixels`);
  if (width < height) return { width: imageSize, height: Math.trunc((imageSize * height) / width) };
  return { width: Math.trunc((imageSize * width) / height), height: imageSize };
}

/** One coordinate of trainHook's random crop: ceil(torch.uniform(0.01, size − crop)). */
export function randomCropOffset(u: number, size: number, crop: number): number {
  const d = size - crop;
  if (d < 0) throw new RangeError(`a ${crop}-pixel crop does not fit in ${size} pixels`);
  if (d === 0) return 0;
  return Math.ceil(u * (d - 0.01) + 0.01);
}

/** One coordinate of testHook's center crop. */
export function centerCropOffset(size: number, crop: number): number {
  if (size < crop) throw new RangeError(`a ${crop}-pixel crop does not fit in ${size} pixels`);
  return Math.ceil((size - crop) / 2);
}

export function randomCrop(image: Size, crop: Size, d: CropDraws): CropPlacement {
  return { y: randomCropOffset(d.uY, image.height, crop.height), x: randomCropOffset(d.uX, image.width, crop.width), flip: d.uFlip > 0.5 };
}

export function centerCrop(image: Size, crop: Size): CropPlacement {
  return { x: centerCropOffset(image.width, crop.width), y: centerCropOffset(image.height, crop.height), flip: false };
}

/** Throws when the crop leaves the image, the pixels are short, or `out` cannot hold the crop (in `unit`s). */
function checkCrop(pixels: Uint8Array, image: Size & { readonly channels: number }, crop: Size & { readonly channels: number }, placement: CropPlacement, outLength: number, unit: string): void {
  const { x, y } = placement;
  if (x < 0 || y < 0 || x + crop.width > image.width || y + crop.height > image.height) {
    throw new RangeError(`crop ${crop.width}×${crop.height} at (${x}, ${y}) is outside the ${image.width}×${image.height} image`);
  }
  if (pixels.length < image.width * image.height * image.channels) throw new RangeError(`${pixels.length} bytes for a ${image.width}×${image.height}×${image.channels} image`);
  const needed = crop.channels * crop.width * crop.height;
  if (outLength < needed) throw new RangeError(`output holds ${outLength} ${unit}, the crop needs ${needed}`);
}

/**
 * Crops interleaved 8-bit pixels (H×W×channels, as sharp's raw output) into planar float32
 * C×cropH×cropW at `out`, mirrored left–right when placement.flip, each value (v/255 − mean)/std.
 * Channels are taken from the source in order; a 1-channel source feeds every output channel.
 */
export function cropToTensor(
  pixels: Uint8Array,
  image: Size & { readonly channels: number },
  crop: Size & { readonly channels: number },
  placement: CropPlacement,
  transform: Transform,
  out: Float32Array,
): void {
  const { x, y, flip } = placement;
  checkCrop(pixels, image, crop, placement, out.length, 'floats');
  const plane = crop.width * crop.height;
  const stride = image.channels;
  const lut = new Float32Array(256);
  for (let c = 0; c < crop.channels; c++) {
    const src = Math.min(c, stride - 1);
    // One table of the 256 values per channel: each entry is (v/255 − mean)/std computed in float64 and rounded
    // once to float32, exactly what the per-pixel expression gave (a division like the Lua's, not a multiply by
    // a precomputed 1/(255·std), which would round differently), at a table lookup per pixel.
    const mean = transform.mean[c];
    const std = transform.std[c];
    for (let v = 0; v < 256; v++) lut[v] = (v / 255 - mean) / std;
    for (let r = 0; r < crop.height; r++) {
      const rowStart = ((y + r) * image.width + x) * stride + src;
      const o = c * plane + r * crop.width;
      if (flip) for (let j = 0, k = rowStart + (crop.width - 1) * stride; j < crop.width; j++, k -= stride) out[o + j] = lut[pixels[k]];
      else for (let j = 0, k = rowStart; j < crop.width; j++, k += stride) out[o + j] = lut[pixels[k]];
    }
  }
}

/**
 * cropToTensor's uint8 twin, for artifacts that take uint8 images (plan.json imageInput): the same crop and
 * flip of the same pixels, written as H×W×C bytes (NHWC, a quarter of float32's bytes) at `out`, left for the
 * model's first conv to normalise. cropToTensor(…, transform, …) equals this crop with each byte v of
 * channel c replaced by (v/255 − mean[c])/std[c].
 */
export function cropToBytes(
  pixels: Uint8Array,
  image: Size & { readonly channels: number },
  crop: Size & { readonly channels: number },
  placement: CropPlacement,
  out: Uint8Array,
): void {
  const { x, y, flip } = placement;
  checkCrop(pixels, image, crop, placement, out.length, 'bytes');
  const C = crop.channels;
  const stride = image.channels;
  for (let r = 0; r < crop.height; r++) {
    const rowStart = ((y + r) * image.width + x) * stride;
    for (let j = 0; j < crop.width; j++) {
      const from = rowStart + (flip ? crop.width - 1 - j : j) * stride;
      const to = (r * crop.width + j) * C;
      // A 1-channel source feeds every output channel, as in cropToTensor.
      for (let c = 0; c < C; c++) out[to + c] = pixels[from + Math.min(c, stride - 1)];
    }
  }
}

/** mean 0, std 1: the crops as plain [0, 1] values (what `nincc stats` measures). */
export function identityTransform(channels: number): Transform {
  return { mean: new Array<number>(channels).fill(0), std: new Array<number>(channels).fill(1) };
}
