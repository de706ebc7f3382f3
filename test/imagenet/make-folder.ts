// Builds small ImageNet-style folders of real image files with sharp for the imagenet-* tests: varied
// sizes and aspect ratios, grayscale, CMYK, a PNG named .JPEG, a truncated JPEG and a text file named .JPEG.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp, { type Sharp } from 'sharp';

/** Class directories in the order `LC_ALL=C ls` gives (upper case before lower, UTF-8 bytes last). */
export const CLASSES = ['Zebra', 'apple', 'Äpfel'] as const;

export interface TestFolder {
  readonly root: string;
  readonly good: { readonly train: readonly string[]; readonly val: readonly string[] };
  readonly bad: { readonly train: readonly string[]; readonly val: readonly string[] };
}

/** A smooth, asymmetric pattern (so flips and offsets show) tinted per class. */
function pattern(width: number, height: number, tint: number): Buffer {
  const px = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      px[i] = (x * 255) / width;
      px[i + 1] = (y * 255) / height;
      px[i + 2] = (tint * 90 + ((x * y) % 97)) % 256;
    }
  }
  return px;
}

function raw(width: number, height: number, tint: number): Sharp {
  return sharp(pattern(width, height, tint), { raw: { width, height, channels: 3 } });
}

async function jpeg(file: string, width: number, height: number, tint: number): Promise<void> {
  await raw(width, height, tint).jpeg({ quality: 90 }).toFile(file);
}

/** The folder of the brief: every class has ordinary JPEGs; the oddities are spread over the classes. */
export async function makeImageNetFolder(root: string): Promise<TestFolder> {
  const good = { train: [] as string[], val: [] as string[] };
  const bad = { train: [] as string[], val: [] as string[] };
  for (const split of ['train', 'val'] as const) for (const c of CLASSES) mkdirSync(join(root, split, c), { recursive: true });
  const t = (c: string, f: string) => join(root, 'train', c, f);
  const v = (c: string, f: string) => join(root, 'val', c, f);

  const plain: [string, number, number, number][] = [
    [t('Zebra', 'z_300x200.JPEG'), 300, 200, 0],
    [t('Zebra', 'z_200x500.JPEG'), 200, 500, 0],
    [t('apple', 'a_257x256.JPEG'), 257, 256, 1],
    [t('apple', 'a_64x64.JPEG'), 64, 64, 1],
    [t('Äpfel', 'p_180x240.jpg'), 180, 240, 2],
    [t('Äpfel', 'p_500x375.JPEG'), 500, 375, 2],
    [v('Zebra', 'vz_320x240.JPEG'), 320, 240, 0],
    [v('apple', 'va_240x320.JPEG'), 240, 320, 1],
    [v('Äpfel', 'vp_256x256.JPEG'), 256, 256, 2],
  ];
  for (const [file, w, h, tint] of plain) {
    await jpeg(file, w, h, tint);
    (file.includes('/val/') ? good.val : good.train).push(file);
  }
  // Grayscale (one-band JPEG): repeated into three channels.
  await raw(150, 120, 0).toColourspace('b-w').jpeg().toFile(t('Zebra', 'z_gray.JPEG'));
  good.train.push(t('Zebra', 'z_gray.JPEG'));
  // CMYK JPEG (ImageNet has 22 of these): converted to sRGB.
  await raw(160, 100, 1).toColourspace('cmyk').jpeg().toFile(t('apple', 'a_cmyk.JPEG'));
  good.train.push(t('apple', 'a_cmyk.JPEG'));
  // A PNG named .JPEG (ImageNet has one): decoded by its content, as Torch's image.load did.
  await raw(210, 140, 2).png().toFile(t('Äpfel', 'p_png.JPEG'));
  good.train.push(t('Äpfel', 'p_png.JPEG'));
  // A JPEG cut in half, and a text file with an image name: unreadable.
  await jpeg(t('Zebra', 'z_truncated.JPEG'), 300, 300, 0);
  const whole = readFileSync(t('Zebra', 'z_truncated.JPEG'));
  writeFileSync(t('Zebra', 'z_truncated.JPEG'), whole.subarray(0, Math.floor(whole.length / 2)));
  writeFileSync(t('apple', 'a_notes.JPEG'), 'not an image\n');
  bad.train.push(t('Zebra', 'z_truncated.JPEG'), t('apple', 'a_notes.JPEG'));
  writeFileSync(v('apple', 'va_empty.JPEG'), '');
  bad.val.push(v('apple', 'va_empty.JPEG'));
  // Not an image extension: never listed.
  writeFileSync(t('apple', 'README.txt'), 'ignored\n');
  await jpeg(v('Zebra', 'vz_200x200.JPEG'), 200, 200, 0);
  good.val.push(v('Zebra', 'vz_200x200.JPEG'));
  return { root, good, bad };
}

/** Every pixel one colour, as lossless PNGs: crops of any placement have exactly this mean and std 0. */
export async function makeSolidFolder(root: string, rgb: readonly [number, number, number]): Promise<void> {
  for (const c of ['one', 'two']) {
    mkdirSync(join(root, c), { recursive: true });
    for (const [w, h] of [[90, 60], [50, 70]]) {
      await sharp({ create: { width: w, height: h, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }).png().toFile(join(root, c, `${w}x${h}.png`));
    }
  }
}
