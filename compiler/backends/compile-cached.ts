// The one compile-and-cache step of the g++ toolchains (the cpu library, the emu library): a library is
// cached under cacheDir()/<kind> by the hash of its source, its compile command (without the source and
// output paths, which differ between artifact directories) and the runtime headers.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir, headersDigest, ToolchainError } from './cpu/toolchain.js';

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
