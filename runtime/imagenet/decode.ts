// Decoding one image file with sharp (libvips) the way donkey.lua's loadImage did, up to the crop:
// 3 channels (grayscale repeated, CMYK converted to sRGB, alpha dropped), short side scaled to
// imageSize with the long side truncated (see donkey.ts), as interleaved 8-bit H×W×C pixels.
import { sharp } from '../sharp.js';
import { scaledSize, type Size } from './donkey.js';

export interface DecodedImage extends Size {
  readonly channels: number; // 1 or 3
  readonly pixels: Uint8Array; // height × width × channels, row-major
  readonly source: Size; // the file's own size
  readonly warning?: string; // damage libvips decoded past (counted and reported, the image still used)
}

/** An image file sharp could not read, with the file and sharp's own words. */
export class UnreadableImageError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

/** Once per thread: one libvips thread per decode (parallelism comes from the worker pool), no cache of decoded files. */
export function configureSharpForWorkers(): void {
  sharp().concurrency(1);
  sharp().cache(false);
}

/**
 * Decodes and resizes one file. Differences from Torch that remain, deliberately:
 * the resampling is libvips' (kernel 'linear': a triangle filter, widened when shrinking) where
 * Torch's image.scale averaged areas when shrinking and interpolated corner-aligned when growing;
 * a truncated JPEG is an error (failOn 'truncated') where libjpeg gave Torch a grey-filled image, and lesser
 * damage decodes with a warning;
 * EXIF orientation is ignored, as Torch's libjpeg did.
 */
export async function decodeResized(file: string, imageSize: number, channels: 1 | 3): Promise<DecodedImage> {
  try {
    return await decodeWith(file, imageSize, channels, 'warning');
  } catch (strict) {
    // libvips decodes some damage (a PNG chunk with a bad CRC, a JPEG with extra bytes) when not told to fail on
    // warnings: decode such a file the lenient way, as Torch would have, and carry the warning to be counted.
    try {
      return { ...(await decodeWith(file, imageSize, channels, 'truncated')), warning: firstLine(strict) };
    } catch (e) {
      throw new UnreadableImageError(file, firstLine(e));
    }
  }
}

const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0];

/**
 * A file's path, or a packed record's JPEG bytes with the size the index gives (no header parse then).
 * An image already at its target size is not resized; a smaller target from a JPEG lets libjpeg scale
 * in the DCT domain on load (sharp's shrink-on-load) before libvips' resize finishes the job.
 */
async function decodeWith(input: string | Buffer, imageSize: number, channels: 1 | 3, failOn: 'warning' | 'truncated', known?: Size): Promise<DecodedImage> {
  const image = sharp()(input, { failOn, sequentialRead: true });
  const meta = known ?? (await image.metadata());
  const w0 = meta.width ?? 0;
  const h0 = meta.height ?? 0;
  if (w0 < 1 || h0 < 1) throw new Error('the image has no size');
  const target = scaledSize(w0, h0, imageSize);
  let pipeline = channels === 3 ? image.toColourspace('srgb').removeAlpha() : image.toColourspace('b-w').removeAlpha();
  if (target.width !== w0 || target.height !== h0) pipeline = pipeline.resize(target.width, target.height, { fit: 'fill', kernel: 'linear' });
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  if (info.width !== target.width || info.height !== target.height || info.channels !== channels) {
    throw new Error(`sharp gave ${info.width}×${info.height}×${info.channels}, expected ${target.width}×${target.height}×${channels}`);
  }
  return { width: target.width, height: target.height, channels, pixels: new Uint8Array(data.buffer, data.byteOffset, data.length), source: { width: w0, height: h0 } };
}

/**
 * A packed record stored at the size the model reads: only the crop's pixels come back (libvips cuts the
 * region out as it decodes, so neither the rest of the image nor a resize costs a copy).
 */
export async function decodeRecordRegion(jpeg: Buffer, region: Size & { readonly x: number; readonly y: number }, channels: 1 | 3): Promise<DecodedImage> {
  try {
    const image = sharp()(jpeg, { failOn: 'truncated', sequentialRead: true });
    const pipeline = (channels === 3 ? image.toColourspace('srgb') : image.toColourspace('b-w')).removeAlpha().extract({ left: region.x, top: region.y, width: region.width, height: region.height });
    const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
    if (info.width !== region.width || info.height !== region.height || info.channels !== channels) throw new Error(`sharp gave ${info.width}×${info.height}×${info.channels}, expected ${region.width}×${region.height}×${channels}`);
    return { width: region.width, height: region.height, channels, pixels: new Uint8Array(data.buffer, data.byteOffset, data.length), source: { width: region.width, height: region.height } };
  } catch (e) {
    throw new UnreadableImageError('a packed record', firstLine(e));
  }
}

/** A packed record's JPEG (pack.ts wrote it, so a failure is corruption, not a lenient-decode case). */
export async function decodeRecord(jpeg: Buffer, stored: Size, imageSize: number, channels: 1 | 3): Promise<DecodedImage> {
  try {
    return await decodeWith(jpeg, imageSize, channels, 'truncated', stored);
  } catch (e) {
    throw new UnreadableImageError('a packed record', firstLine(e));
  }
}
