// The packed reader's native JPEG decoder: nincc_jpeg.node (runtime/binding/jpeg_*.cc, libjpeg-turbo), which
// decodes only a crop's rows and columns, scaled in the DCT domain when asked, into a caller's reused bytes.
// Built only where libjpeg-turbo's headers were found; without it the packed reader decodes with sharp.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { builtAddonPath } from '../native.js';
import type { Size } from './donkey.js';

export interface JpegAddon {
  /** true once `out` holds the crop as height × width × 3 RGB bytes; false for a JPEG it leaves to sharp (CMYK). Throws on bad data. */
  decodeCrop(jpeg: Uint8Array, scaleNum: number, scaledWidth: number, scaledHeight: number, x: number, y: number, width: number, height: number, flip: boolean, out: Uint8Array): boolean;
  readonly version: string;
}

export type NativeJpeg = { readonly ok: true; readonly addon: JpegAddon } | { readonly ok: false; readonly why: string };

/** Where the build puts the decoder, beside nincc.node. */
export function nativeJpegPath(): string {
  return builtAddonPath('nincc_jpeg.node');
}

let loaded: NativeJpeg | undefined;

/** The decoder, loaded once per thread, or why there is none (the caller says so once and uses sharp). */
export function nativeJpeg(): NativeJpeg {
  if (loaded) return loaded;
  const path = nativeJpegPath();
  if (!existsSync(path)) return (loaded = { ok: false, why: `${path} was not built (libjpeg-turbo's headers were not found: apt-get install libjpeg62-turbo-dev, then npm run build:native)` });
  try {
    return (loaded = { ok: true, addon: createRequire(import.meta.url)(path) as JpegAddon });
  } catch (e) {
    return (loaded = { ok: false, why: `${path} does not load: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}` });
  }
}

/**
 * The numerator n of the DCT-domain scale n/8 that turns `stored` into exactly `target` (libjpeg rounds the
 * scaled size up), or undefined when no such scale exists and a real resize is needed.
 */
export function dctScale(stored: Size, target: Size): number | undefined {
  for (let n = 8; n >= 1; n--) {
    if (Math.ceil((stored.width * n) / 8) === target.width && Math.ceil((stored.height * n) / 8) === target.height) return n;
  }
  return undefined;
}

/** One worker thread's native decoding: the addon and the crop's bytes, reused for every image. */
export interface NativeCropDecoder {
  readonly addon: JpegAddon;
  readonly bytes: Uint8Array; // crop.height × crop.width × 3
}

/** The decoder for RGB crops of this size, or undefined where it is not built (or a 1-channel model: libvips' grey is not JPEG's Y). */
export function nativeCropDecoder(crop: Size & { readonly channels: 1 | 3 }): NativeCropDecoder | undefined {
  const native = nativeJpeg();
  if (!native.ok || crop.channels !== 3) return undefined;
  return { addon: native.addon, bytes: new Uint8Array(crop.width * crop.height * 3) };
}
