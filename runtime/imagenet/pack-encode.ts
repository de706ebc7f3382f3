// One source image made into a packed record's payload: a JPEG whose short side is imageSize, resized
// exactly as the folder reader resizes (decode.ts), so reading it back differs from the folder path only by
// the JPEG re-encoding; a JPEG already that small is kept byte for byte (the reader then scales it as the
// folder reader would have).
import { readFile } from 'node:fs/promises';
import { sharp } from '../sharp.js';
import { scaledSize } from './donkey.js';

export interface EncodedImage {
  readonly ok: true;
  readonly bytes: Buffer;
  readonly width: number;
  readonly height: number;
  readonly kept: boolean; // the source file's own bytes
  readonly warning?: string;
}

export type PackedImage = EncodedImage | { readonly ok: false; readonly reason: string };

const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0];

async function reencode(input: Buffer, imageSize: number, quality: number, failOn: 'warning' | 'truncated'): Promise<EncodedImage> {
  const image = sharp()(input, { failOn, sequentialRead: true });
  const meta = await image.metadata();
  const w0 = meta.width ?? 0;
  const h0 = meta.height ?? 0;
  if (w0 < 1 || h0 < 1) throw new Error('the image has no size');
  // Larger images go to the folder reader's size; smaller ones keep theirs (the reader scales them up, as it would have).
  const target = Math.min(w0, h0) > imageSize ? scaledSize(w0, h0, imageSize) : { width: w0, height: h0 };
  let pipeline = image.toColourspace('srgb').removeAlpha();
  if (target.width !== w0 || target.height !== h0) pipeline = pipeline.resize(target.width, target.height, { fit: 'fill', kernel: 'linear' });
  const { data, info } = await pipeline.jpeg({ quality }).toBuffer({ resolveWithObject: true });
  if (info.width !== target.width || info.height !== target.height) throw new Error(`sharp gave ${info.width}×${info.height}, expected ${target.width}×${target.height}`);
  return { ok: true, bytes: data, width: info.width, height: info.height, kept: false };
}

/** A JPEG no larger than imageSize that decodes without a warning goes in as it is. */
async function keepable(input: Buffer, imageSize: number): Promise<{ width: number; height: number } | undefined> {
  const meta = await sharp()(input).metadata();
  if (meta.format !== 'jpeg' || !meta.width || !meta.height || Math.min(meta.width, meta.height) > imageSize) return undefined;
  try {
    await sharp()(input, { failOn: 'warning' }).raw().toBuffer();
    return { width: meta.width, height: meta.height };
  } catch {
    return undefined;
  }
}

/** Never throws: an unreadable file is an answer, skipped by the packer and listed in the index. */
export async function packImage(file: string, imageSize: number, quality: number): Promise<PackedImage> {
  let input: Buffer;
  try {
    input = await readFile(file);
  } catch (e) {
    return { ok: false, reason: firstLine(e) };
  }
  try {
    const kept = await keepable(input, imageSize);
    if (kept) return { ok: true, bytes: input, ...kept, kept: true };
  } catch {
    // not an image sharp knows: the re-encode below says why
  }
  try {
    return await reencode(input, imageSize, quality, 'warning');
  } catch (strict) {
    // As the folder reader: damage libvips can decode past is decoded the lenient way, with the warning kept.
    try {
      return { ...(await reencode(input, imageSize, quality, 'truncated')), warning: firstLine(strict) };
    } catch (e) {
      return { ok: false, reason: firstLine(e) };
    }
  }
}
