// The one compile-and-cache step of the g++ toolchains (the cpu library, the emu library): a library is
// cached under cacheDir()/<kind> by the hash of its source, its compile command (without the source and
// output paths, which differ between artifact directories) and the runtime headers. The cache folder,
// the headers' digest and the toolchains' error live here, where every toolchain (cpu, cuda) imports them.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../package-root.js';

/** A toolchain (g++, nvcc) is missing or failed on generated source. */
export class ToolchainError extends Error {}

/** Where compiled libraries are cached: $NINCC_CACHE_DIR, else $XDG_CACHE_HOME/nincc or ~/.cache/nincc. */
export function cacheDir(): string {
  return process.env.NINCC_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'nincc');
}

let digest: string | undefined;
/** The kernel library's headers take part in every cache key: a header change rebuilds. */
export function headersDigest(): string {
  if (digest) return digest;
  const h = createHash('sha256');
  const dir = join(packageRoot(), 'runtime/include/nincc');
  const walk = (d: string) => {
    for (const name of readdirSorted(d)) {
      const p = join(d, name);
      if (statIsDir(p)) walk(p);
      else h.update(p.slice(dir.length)).update(readFileSync(p));
    }
  };
  walk(dir);
  digest = h.digest('hex');
  return digest;
}

const readdirSorted = (d: string) => readdirSync(d).sort();
const statIsDir = (p: string) => statSync(p).isDirectory();

export interface CachedCompile {
  readonly kind: 'cpu' | 'emu'; // the cache subfolder
  readonly command: readonly string[]; // the full g++ command line
  readonly keyCommand: readonly string[]; // the part of it that takes part in the cache key
  readonly sourceText: string;
  readonly sourcePath: string; // already written; named in errors
  readonly output: string;
  readonly what: string; // for errors: 'g++', 'g++ -DNINCC_EMU'
}

export const quoteCommand = (args: readonly string[]) => args.map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' ');

/** Copies the cached library to `output`, or compiles it and caches it; says which, with the command. */
export function compileCached(c: CachedCompile): { cached: boolean; command: string } {
  const key = createHash('sha256').update(c.sourceText).update(c.keyCommand.join(' ')).update(headersDigest()).digest('hex');
  const cached = join(cacheDir(), c.kind, `${key}.so`);
  const command = quoteCommand(c.command);
  if (existsSync(cached)) {
    copyFileSync(cached, c.output);
    return { cached: true, command };
  }
  const r = spawnSync(c.command[0], c.command.slice(1), { encoding: 'utf8' });
  if (r.error) throw new ToolchainError(`cannot run g++ (${r.error.message}); install it (apt-get install g++)`);
  if (r.status !== 0) throw new ToolchainError(`${c.what} failed on the generated ${c.sourcePath}:\n${r.stderr.trim()}\nrepro: ${command}`);
  mkdirSync(join(cacheDir(), c.kind), { recursive: true });
  const tmp = `${cached}.tmp-${process.pid}`;
  copyFileSync(c.output, tmp);
  renameSync(tmp, cached);
  return { cached: false, command };
}
