// Where the nincc package lives on disk, for files that ship beside the compiled JS (headers,
// templates, the native addon). Found by nincc's own package.json, which every layout has: the
// TS sources, the compiled dist/, and an npm install under node_modules/nincc.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

function isNinccManifest(path: string): boolean {
  if (!existsSync(path)) return false;
  try {
    return JSON.parse(readFileSync(path, 'utf8')).name === 'nincc';
  } catch {
    return false; // an unreadable package.json is not ours; keep walking up
  }
}

/** The directory holding nincc's package.json, from either the TS sources or the compiled dist/. */
export function packageRoot(): string {
  if (cached) return cached;
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    if (isNinccManifest(join(dir, 'package.json'))) return (cached = dir);
    if (dirname(dir) === dir) throw new Error(`internal error: cannot find nincc's package.json above ${start}`);
  }
}
