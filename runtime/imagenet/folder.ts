// The ImageNet folder layout: ROOT/train/<class>/*.JPEG and ROOT/val/<class>/*.JPEG, classes numbered in
// sorted directory order (byte order, as `LC_ALL=C ls` lists them), and the classes.txt beside checkpoints.
// Layout mistakes are errors that name the path, found before any training starts.
import { existsSync, readdirSync, readFileSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomicSync } from '../io/atomic-write.js';
import type { RecordRef } from './pack-format.js';

/** The extensions donkey.lua's dataLoader gave `find -iname`: jpg, jpeg, png, ppm, bmp in any case. */
const IMAGE_FILE = /\.(jpe?g|png|ppm|bmp)$/i;

export const CLASS_LIST_FILE = 'classes.txt';

/** Image files of one split, grouped by class in class order, sorted by path within a class. */
export interface ImageList {
  readonly dir: string;
  readonly classes: readonly string[]; // label → class directory name
  readonly files: readonly string[];
  readonly labels: Int32Array;
  readonly classStart: Int32Array; // index in files of each class's first image
  readonly classCount: Int32Array; // images of each class here (0 for a class this split lacks)
  readonly skipped: readonly SkippedEntry[]; // entries under the class directories that are not listed
  /** Set for a packed dataset's split (packed.ts): where image i's record is; `files` then only name the images. */
  readonly record?: (i: number) => RecordRef;
}

export interface ImageNetFolder {
  readonly root: string;
  readonly train: ImageList;
  readonly val: ImageList;
}

export class DataLayoutError extends Error {}

/** Byte order of the UTF-8 names (JavaScript's default sort compares UTF-16 units, which differs above U+FFFF). */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory(); // follows symlinks, as find -L users expect of class links
  } catch {
    return false;
  }
}

/** A directory entry left out of a split, and why; listed by `--verbose`. */
export interface SkippedEntry {
  readonly path: string;
  readonly reason: string;
}

/** Why a non-directory entry is not an image to open: only regular files are (a FIFO would block the reader forever). */
function notAnImage(name: string, info: Stats | undefined): string | undefined {
  if (!info) return 'a broken link or an entry that cannot be read';
  if (!info.isFile()) {
    const kind = info.isFIFO() ? 'a named pipe' : info.isSocket() ? 'a socket' : info.isCharacterDevice() || info.isBlockDevice() ? 'a device' : 'not a regular file';
    return `${kind}, not an image file`;
  }
  return IMAGE_FILE.test(name) ? undefined : 'not a .JPEG, .jpg, .png, .ppm or .bmp file';
}

/** Image files under dir, recursively (Torch ran `find` on each class directory), sorted; an explicit stack, and
 *  each directory (by device and inode) visited once, so a symlink to an ancestor cannot loop. */
function imageFilesUnder(dir: string, skipped: SkippedEntry[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  // Entries still to look at, the next on top: a directory's entries replace it in sorted order, which lists
  // files in the same order as a recursive walk.
  const pending: { path: string; name: string }[] = [{ path: dir, name: '' }];
  for (let entry = pending.pop(); entry !== undefined; entry = pending.pop()) {
    let info: Stats | undefined;
    try {
      info = statSync(entry.path);
    } catch {
      info = undefined;
    }
    if (info?.isDirectory()) {
      const key = `${info.dev}:${info.ino}`;
      if (seen.has(key)) {
        skipped.push({ path: entry.path, reason: 'a directory already listed (a link back to it)' });
        continue;
      }
      seen.add(key);
      const names = readdirSync(entry.path).sort(byteOrder);
      for (let i = names.length - 1; i >= 0; i--) pending.push({ path: join(entry.path, names[i]), name: names[i] });
      continue;
    }
    const reason = notAnImage(entry.name, info);
    if (reason) skipped.push({ path: entry.path, reason });
    else out.push(entry.path);
  }
  return out;
}

/** The class directories of a split, sorted; an error naming the path when there are none. */
export function classDirectories(dir: string): string[] {
  if (!existsSync(dir)) throw new DataLayoutError(`${dir}: no such directory`);
  if (!isDirectory(dir)) throw new DataLayoutError(`${dir}: not a directory`);
  const classes = readdirSync(dir).filter((n) => isDirectory(join(dir, n))).sort(byteOrder);
  if (classes.length === 0) throw new DataLayoutError(`${dir}: no class directories (expected ${join(dir, '<class>', '*.JPEG')})`);
  return classes;
}

/**
 * Lists one split. With `classes` (the training classes) the split's directories must be among
 * them and keep their training labels; without, its own sorted directories are the classes.
 */
export function listImageFolder(dir: string, classes?: readonly string[]): ImageList {
  const present = classDirectories(dir);
  const names = classes ?? present;
  const index = new Map(names.map((c, i) => [c, i]));
  for (const c of present) {
    if (!index.has(c)) throw new DataLayoutError(`${join(dir, c)}: class '${c}' is not one of the ${names.length} training classes`);
  }
  const files: string[] = [];
  const labels: number[] = [];
  const classStart = new Int32Array(names.length);
  const classCount = new Int32Array(names.length);
  const here = new Set(present);
  const skipped: SkippedEntry[] = [];
  names.forEach((c, label) => {
    classStart[label] = files.length;
    if (!here.has(c)) return;
    const found = imageFilesUnder(join(dir, c), skipped);
    if (found.length === 0) throw new DataLayoutError(`${join(dir, c)}: empty class directory (no .JPEG, .jpg, .png, .ppm or .bmp files)`);
    for (const f of found) {
      files.push(f);
      labels.push(label);
    }
    classCount[label] = found.length;
  });
  return { dir, classes: names, files, labels: Int32Array.from(labels), classStart, classCount, skipped };
}

/** True when `dir` looks like an ImageNet root (it has a train/ directory). */
export function isImageNetRoot(dir: string): boolean {
  return isDirectory(join(dir, 'train'));
}

/** Both splits of ROOT, the validation classes checked against the training ones. */
export function openImageNetFolder(root: string): ImageNetFolder {
  if (!isDirectory(root)) throw new DataLayoutError(`${root}: no such directory`);
  const layout = `an ImageNet folder holds ${join(root, 'train', '<class>', '*.JPEG')} and ${join(root, 'val', '<class>', '*.JPEG')}`;
  for (const split of ['train', 'val']) {
    if (!isDirectory(join(root, split))) throw new DataLayoutError(`${join(root, split)}: missing (${layout})`);
  }
  const train = listImageFolder(join(root, 'train'));
  const val = listImageFolder(join(root, 'val'), train.classes);
  return { root, train, val };
}

/** classes.txt: one class directory name per line, line i+1 for label i. */
export function writeClassList(path: string, classes: readonly string[]): void {
  writeFileAtomicSync(path, classes.join('\n') + '\n');
}

export function readClassList(path: string): string[] {
  if (!existsSync(path)) throw new DataLayoutError(`${path}: no such class list`);
  const lines = readFileSync(path, 'utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  if (lines.length === 0 || lines.some((l) => l === '')) throw new DataLayoutError(`${path}: not a class list (one class name per line)`);
  return lines;
}

/**
 * Writes RUN_DIR/classes.txt; when resuming, checks the one the earlier run left there instead:
 * resuming with other classes would silently relabel every image.
 */
export function recordClassList(runDir: string, classes: readonly string[], resume: boolean): string {
  const path = join(runDir, CLASS_LIST_FILE);
  if (resume && existsSync(path)) {
    const before = readClassList(path);
    const differ = before.length !== classes.length || before.some((c, i) => c !== classes[i]);
    if (differ) {
      const i = before.findIndex((c, k) => c !== classes[k]);
      throw new DataLayoutError(`${path} lists ${before.length} classes${i >= 0 ? ` (label ${i} is '${before[i]}')` : ''}, but the data has ${classes.length}${i >= 0 && i < classes.length ? ` (label ${i} is '${classes[i]}')` : ''}: use another run directory (-o) or the data that run was trained on`);
    }
    return path;
  }
  writeClassList(path, classes);
  return path;
}
