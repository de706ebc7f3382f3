// Where the nincc package lives on disk, for files that ship beside the compiled JS (headers, templates).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** The directory holding nincc's package.json, from either the TS sources or the compiled dist/. */
export function packageRoot(): string {
  if (cached) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || existsSync(join(dir, 'tsconfig.json')) === false) {
    const up = dirname(dir);
    if (up === dir) throw new Error('internal error: cannot find the nincc package root');
    dir = up;
  }
  cached = dir;
  return dir;
}
