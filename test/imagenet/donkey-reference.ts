// A float64 reference of donkey.lua's steps after decoding, written from the Lua independently of
// runtime/imagenet/donkey.ts: 1-based loops as the Lua indexed tensors, BigInt division for the sizes.

/** loadImage's image.scale(input, w, h): the float size truncated by torch.Tensor's size arguments. */
export function luaScaledSize(iW: number, iH: number, loadSize: number): { w: number; h: number } {
  const div = (a: number, b: number) => Number(BigInt(a) / BigInt(b)); // exact floor of a positive quotient
  if (iW < iH) return { w: loadSize, h: div(loadSize * iH, iW) };
  return { w: div(loadSize * iW, iH), h: loadSize };
}

/** torch.uniform(a, b) given the generator's u in [0, 1). */
export function torchUniform(u: number, a = 0, b = 1): number {
  return u * (b - a) + a;
}

export interface ReferenceCrop {
  readonly x1: number; // 0-based start, as image.crop takes it
  readonly y1: number;
  readonly flip: boolean;
  readonly out: Float64Array; // C × oH × oW
}

interface Resized {
  readonly pixels: Uint8Array; // H × W × 3
  readonly width: number;
  readonly height: number;
}

function cropOut(img: Resized, x1: number, y1: number, oW: number, oH: number, flip: boolean, mean: readonly number[], std: readonly number[]): Float64Array {
  const out = new Float64Array(3 * oH * oW);
  for (let c = 1; c <= 3; c++) {
    for (let i = 1; i <= oH; i++) {
      for (let j = 1; j <= oW; j++) {
        // image.crop: cropped[i][j] = input[y1 + i][x1 + j] in 1-based terms (0-based start).
        // image.hflip: flipped[i][j] = cropped[i][oW + 1 - j].
        const jj = flip ? oW + 1 - j : j;
        const row = y1 + i - 1; // 0-based row of the input
        const col = x1 + jj - 1;
        const byte = img.pixels[(row * img.width + col) * 3 + (c - 1)];
        out[(c - 1) * oH * oW + (i - 1) * oW + (j - 1)] = (byte / 255 - mean[c - 1]) / std[c - 1];
      }
    }
  }
  return out;
}

/** trainHook: h1 then w1 then the flip draw, exactly the Lua's expressions. */
export function trainHookReference(img: Resized, oW: number, oH: number, u: { uY: number; uX: number; uFlip: number }, mean: readonly number[], std: readonly number[]): ReferenceCrop {
  const iW = img.width;
  const iH = img.height;
  const h1 = Math.ceil(torchUniform(u.uY, 1e-2, iH - oH));
  const w1 = Math.ceil(torchUniform(u.uX, 1e-2, iW - oW));
  const flip = torchUniform(u.uFlip) > 0.5;
  return { x1: w1, y1: h1, flip, out: cropOut(img, w1, h1, oW, oH, flip, mean, std) };
}

/** testHook: the center patch. */
export function testHookReference(img: Resized, oW: number, oH: number, mean: readonly number[], std: readonly number[]): ReferenceCrop {
  const w1 = Math.ceil((img.width - oW) / 2);
  const h1 = Math.ceil((img.height - oH) / 2);
  return { x1: w1, y1: h1, flip: false, out: cropOut(img, w1, h1, oW, oH, false, mean, std) };
}

/** torch's img[c]:mean() and img[c]:std() (unbiased) of one C×H×W crop. */
export function torchMeanStd(crop: ArrayLike<number>, channels: number, plane: number): { mean: number[]; std: number[] } {
  const mean: number[] = [];
  const std: number[] = [];
  for (let c = 0; c < channels; c++) {
    let s = 0;
    for (let i = 0; i < plane; i++) s += crop[c * plane + i];
    const m = s / plane;
    let v = 0;
    for (let i = 0; i < plane; i++) v += (crop[c * plane + i] - m) ** 2;
    mean.push(m);
    std.push(Math.sqrt(v / (plane - 1)));
  }
  return { mean, std };
}
