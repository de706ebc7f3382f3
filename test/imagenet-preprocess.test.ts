// donkey.lua's preprocessing, checked against the float64 reference in test/imagenet/donkey-reference.ts:
// resize sizes, crop offsets (random and center), flips and normalisation, on sharp's decoded pixels.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { centerCropOffset, cropToTensor, randomCropOffset, scaledSize } from '../runtime/imagenet/donkey.js';
import { decodeResized } from '../runtime/imagenet/decode.js';
import { DecodePool } from '../runtime/imagenet/decode-pool.js';
import { luaScaledSize, testHookReference, trainHookReference } from './imagenet/donkey-reference.js';
import { makeImageNetFolder, type TestFolder } from './imagenet/make-folder.js';

const MEAN = [0.48462227599918, 0.45624044862054, 0.40588363755159];
const STD = [0.22889466674951, 0.22446679341259, 0.22495548344775];
const U_MAX = (2 ** 32 - 1) / 2 ** 32; // the largest u torch's generator gives

function expectClose(actual: Float32Array, expected: Float64Array): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  expect(worst).toBeLessThan(2e-6); // one float32 rounding of values below 5 in magnitude
}

describe("donkey.lua's arithmetic", () => {
  it('scales the short side to imageSize and truncates the long side, as image.scale via torch.Tensor sizes did', () => {
    const cases: [number, number, number, number][] = [
      [300, 200, 384, 256],
      [200, 500, 256, 640],
      [257, 256, 257, 256],
      [256, 257, 256, 257],
      [64, 64, 256, 256],
      [500, 375, 341, 256], // 341.33 → 341
      [375, 500, 256, 341],
      [500, 333, 384, 256], // 384.38 → 384
      [333, 500, 256, 384],
      [1, 3, 256, 768],
    ];
    for (const [w, h, ew, eh] of cases) {
      expect(scaledSize(w, h, 256)).toEqual({ width: ew, height: eh });
      const ref = luaScaledSize(w, h, 256);
      expect([ref.w, ref.h]).toEqual([ew, eh]);
    }
    for (let w = 1; w < 700; w += 7) for (let h = 1; h < 700; h += 11) {
      const r = luaScaledSize(w, h, 256);
      expect(scaledSize(w, h, 256)).toEqual({ width: r.w, height: r.h });
    }
  });

  it("draws random offsets in 1..D, never 0, as math.ceil(torch.uniform(1e-2, D)) does", () => {
    expect(randomCropOffset(0, 256, 224)).toBe(1);
    expect(randomCropOffset(U_MAX, 256, 224)).toBe(32);
    expect(randomCropOffset(0.5, 341, 224)).toBe(Math.ceil(0.5 * (117 - 0.01) + 0.01));
    const seen = new Set<number>();
    for (let k = 0; k < 4096; k++) seen.add(randomCropOffset(k / 4096, 229, 224));
    expect([...seen].sort()).toEqual([1, 2, 3, 4, 5]);
    expect(randomCropOffset(0.3, 224, 224)).toBe(0); // Torch would crop off the image here; the only crop there is
    expect(() => randomCropOffset(0.3, 200, 224)).toThrow(/does not fit/);
  });

  it('places the center crop at ceil((W − 224)/2)', () => {
    expect(centerCropOffset(341, 224)).toBe(59); // 58.5 rounds up
    expect(centerCropOffset(256, 224)).toBe(16);
    expect(centerCropOffset(257, 224)).toBe(17);
    expect(centerCropOffset(224, 224)).toBe(0);
  });

  it('crops, flips and normalises like the reference on arbitrary pixels', () => {
    const img = { width: 37, height: 29, channels: 3 };
    const pixels = Uint8Array.from({ length: 37 * 29 * 3 }, (_, i) => (i * 131 + 7) % 256);
    for (const [uY, uX, uFlip] of [[0, 0, 0.2], [0.7, 0.1, 0.9], [U_MAX, U_MAX, 0.5000001], [0.3, 0.8, 0.5]]) {
      const ref = trainHookReference({ pixels, width: 37, height: 29 }, 20, 16, { uY, uX, uFlip }, MEAN, STD);
      const out = new Float32Array(3 * 16 * 20);
      cropToTensor(pixels, img, { channels: 3, width: 20, height: 16 }, { x: ref.x1, y: ref.y1, flip: ref.flip }, { mean: MEAN, std: STD }, out);
      expectClose(out, ref.out);
    }
    expect(trainHookReference({ pixels, width: 37, height: 29 }, 20, 16, { uY: 0, uX: 0, uFlip: 0.5 }, MEAN, STD).flip).toBe(false); // u > 0.5, strictly
  });
});

describe('decoded images through the worker pool', () => {
  let folder: TestFolder;
  let pool: DecodePool;
  const crop = { channels: 3 as const, width: 224, height: 224 };
  const per = 3 * 224 * 224;

  beforeAll(async () => {
    folder = await makeImageNetFolder(mkdtempSync(join(tmpdir(), 'nincc-imagenet-pre-')));
    pool = new DecodePool({ workers: 2, imageSize: 256, crop, transform: { mean: MEAN, std: STD } });
  });
  afterAll(() => pool?.close());

  it('gives every readable image (gray, CMYK, PNG-named-JPEG, smaller than the crop) the reference crop of its decoded pixels', async () => {
    const draws = [
      { uY: 0, uX: 0, uFlip: 0.9 },
      { uY: U_MAX, uX: U_MAX, uFlip: 0.1 },
      { uY: 0.37, uX: 0.61, uFlip: 0.75 },
    ];
    for (const file of [...folder.good.train, ...folder.good.val]) {
      const img = await decodeResized(file, 256, 3);
      const ref = luaScaledSize(img.source.width, img.source.height, 256);
      expect([img.width, img.height], file).toEqual([ref.w, ref.h]);
      expect(img.channels).toBe(3);
      const out = new SharedArrayBuffer(per * 4);
      for (const d of draws) {
        const r = await pool.decode({ file, mode: 'train', draws: d, out, offset: 0 });
        const expected = trainHookReference(img, 224, 224, d, MEAN, STD);
        expect(r, file).toEqual({ ok: true, x: expected.x1, y: expected.y1, flip: expected.flip, resized: { width: ref.w, height: ref.h } });
        expectClose(new Float32Array(out), expected.out);
      }
      const r = await pool.decode({ file, mode: 'eval', out, offset: 0 });
      const center = testHookReference(img, 224, 224, MEAN, STD);
      expect(r).toMatchObject({ ok: true, x: center.x1, y: center.y1, flip: false });
      expectClose(new Float32Array(out), center.out);
    }
  });

  it('repeats a grayscale image into three equal channels and converts CMYK to RGB', async () => {
    const gray = await decodeResized(folder.good.train.find((f) => f.endsWith('z_gray.JPEG'))!, 256, 3);
    for (let p = 0; p < gray.pixels.length; p += 3) expect(gray.pixels[p]).toBe(gray.pixels[p + 2]);
    const cmyk = await decodeResized(folder.good.train.find((f) => f.endsWith('a_cmyk.JPEG'))!, 256, 3);
    expect(cmyk.source).toEqual({ width: 160, height: 100 });
    expect(cmyk.pixels.length).toBe(409 * 256 * 3);
  });

  it('answers an unreadable file with the reason instead of failing', async () => {
    const out = new SharedArrayBuffer(per * 4);
    for (const file of folder.bad.train) {
      const r = await pool.decode({ file, mode: 'eval', out, offset: 0 });
      expect(r.ok, file).toBe(false);
      if (!r.ok) expect(r.reason.length).toBeGreaterThan(0);
    }
    await expect(decodeResized(folder.bad.train[0], 256, 3)).rejects.toThrow(folder.bad.train[0]);
  });
});
