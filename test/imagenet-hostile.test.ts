// Image folders that used to hang or mislead `nincc eval` (issue #21, finding 6): a named pipe called
// fifo.png, a PNG with a bad CRC, a directory named x.png, stray files, a symlink back to an ancestor.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeResized, UnreadableImageError } from '../runtime/imagenet/decode.js';
import { listImageFolder } from '../runtime/imagenet/folder.js';
import { nincc } from './cli-run.js';

const work = mkdtempSync(join(tmpdir(), 'nincc-imagenet-hostile-'));
const data = join(work, 'val');

const solidPng = (rgb: number) => sharp({ create: { width: 12, height: 10, channels: 3, background: { r: rgb, g: rgb, b: rgb } } }).png().toBuffer();

/** The PNG with one bit of its IDAT chunk's CRC flipped: the pixels are intact, the file is not. */
function badCrc(png: Buffer): Buffer {
  const idat = png.indexOf('IDAT');
  const crcAt = idat + 4 + png.readUInt32BE(idat - 4);
  const bad = Buffer.from(png);
  bad[crcAt] ^= 1;
  return bad;
}

beforeAll(async () => {
  for (const c of ['one', 'two']) mkdirSync(join(data, c), { recursive: true });
  writeFileSync(join(data, 'one', 'a.png'), await solidPng(40));
  writeFileSync(join(data, 'one', 'crc.png'), badCrc(await solidPng(80)));
  writeFileSync(join(data, 'one', 'notes.txt'), 'not an image\n');
  execFileSync('mkfifo', [join(data, 'one', 'fifo.png')]);
  mkdirSync(join(data, 'two', 'x.png'));
  writeFileSync(join(data, 'two', 'x.png', 'b.png'), await solidPng(120));
  writeFileSync(join(data, 'two', 'c.png'), await solidPng(160));
  symlinkSync('..', join(data, 'two', 'x.png', 'up'));
});

describe('listing an image folder', () => {
  it('opens only regular image files, recurses into a directory named x.png, and lists every other entry with its reason', () => {
    const list = listImageFolder(data);
    expect(list.files).toEqual([join(data, 'one', 'a.png'), join(data, 'one', 'crc.png'), join(data, 'two', 'c.png'), join(data, 'two', 'x.png', 'b.png')]);
    expect(list.skipped).toEqual([
      { path: join(data, 'one', 'fifo.png'), reason: 'a named pipe, not an image file' },
      { path: join(data, 'one', 'notes.txt'), reason: 'not a .JPEG, .jpg, .png, .ppm or .bmp file' },
      { path: join(data, 'two', 'x.png', 'up'), reason: 'a directory already listed (a link back to it)' },
    ]);
  });
});

describe('decoding a damaged PNG', () => {
  it('a bad CRC decodes to the right pixels with a warning; a truncated file is unreadable', async () => {
    const img = await decodeResized(join(data, 'one', 'crc.png'), 10, 3);
    expect(img.warning).toMatch(/png/i);
    expect(new Set(img.pixels)).toEqual(new Set([80]));
    expect((await decodeResized(join(data, 'one', 'a.png'), 10, 3)).warning).toBeUndefined();
    const truncated = join(work, 'truncated.png');
    const whole = readFileSync(join(data, 'one', 'a.png'));
    writeFileSync(truncated, whole.subarray(0, whole.length - 30));
    await expect(decodeResized(truncated, 10, 3)).rejects.toBeInstanceOf(UnreadableImageError);
  });
});

describe('nincc eval on that folder', () => {
  const spec = join(work, 'tiny.model');
  const artifact = join(work, 'tiny');
  beforeAll(() => {
    writeFileSync(spec, 'model tiny {\n  input 3x8x8\n  imageSize 8\n  view(-1)  linear(192, 2)  logsoftmax\n}\n');
    const r = nincc(['build', spec, '-o', artifact, '-q']);
    expect(r.code, r.stderr).toBe(0);
  }, 300_000);

  it('does not hang on the named pipe, scores the four images, reports the CRC warning and, with --verbose, the left-out entries', () => {
    const r = nincc(['eval', artifact, '--data', data, '--workers', '1', '--verbose'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/\(4 images of .*val\)\n$/);
    const lines = r.stderr.split('\n');
    expect(lines).toContain(`note: 3 entries under ${data} are not image files and were left out:`);
    expect(lines).toContain(`  ${join(data, 'one', 'fifo.png')}: a named pipe, not an image file`);
    expect(lines).toContain("warning: 1 image scored although damaged (decoded past the decoder's warning):");
    expect(lines.find((l) => l.startsWith(`  ${join(data, 'one', 'crc.png')}: `))).toMatch(/png/i);
    const quiet = nincc(['eval', artifact, '--data', data, '--workers', '1'], { timeoutMs: 60_000 });
    expect(quiet.stderr).toContain(`note: 3 entries under ${data} are not image files and are left out (--verbose lists them)\n`);
  });
});
