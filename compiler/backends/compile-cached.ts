// The one compile-and-cache step of the g++ toolchains (the cpu library, the emu library): a library is
// cached under cacheDir()/<kind> by the hash of its source, its compile command (without the source and
// output paths, which differ between artifact directories) and the runtime headers. The cache folder,
// the headers' digest and the toolchains' error live here, where every toolchain (cpu, cuda) imports them.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../package-root.js';
import { childCpuSeconds, logCompile } from './compile-log.js';

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
  /**
   * The build's source hash (plan.json sourceHash), which the library only returns (nincc_source_hash). It
   * changes with the spec's text, max batch and target while the kernels often do not, so the library is
   * cached as compiled from the source with a placeholder of the same length in its place, and the copy
   * delivered has the placeholder's bytes replaced by the hash's: the same bytes as compiling the source
   * itself, symbol table and build-id aside (test/compile-cache-identity.test.ts), shared by every build with
   * those kernels, whatever their comments say.
   */
  readonly identity?: string;
}

export const quoteCommand = (args: readonly string[]) => args.map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' ');

/**
 * The source with its whole-line comments blanked, lines kept (for __LINE__): they name the spec's file, model and
 * lines, and compile to nothing, so the cache key leaves them out and the same kernels under another spec's name
 * share the entry. One ending in a backslash continues onto the next line, which it would turn into code: kept.
 */
export const blankLineComments = (text: string) => text.replace(/^[ \t]*\/\/.*$/gm, (line) => (line.endsWith('\\') ? line : ''));

/** A string of the identity's length that no generated source or library holds otherwise. */
const placeholderFor = (identity: string) => 'nincc-source-hash-placeholder-'.repeat(Math.ceil(identity.length / 30) + 1).slice(0, identity.length);

/** Copies the cached library to `output`, or compiles it and caches it; says which, with the command. */
export function compileCached(c: CachedCompile): { cached: boolean; command: string } {
  // NINCC_CACHE_WHOLE_SOURCE=1 keys by the whole source, hash included, as before (A/B: bench/logs/ciB-times.md).
  const identity = c.identity && c.identity.length >= 32 && c.sourceText.includes(c.identity) && process.env.NINCC_CACHE_WHOLE_SOURCE !== '1' ? c.identity : undefined;
  const placeholder = identity && placeholderFor(identity);
  const keyText = identity && placeholder ? c.sourceText.replaceAll(identity, placeholder) : c.sourceText;
  const hashed = identity ? blankLineComments(keyText) : keyText;
  const key = createHash('sha256').update(hashed).update(c.keyCommand.join(' ')).update(headersDigest()).digest('hex');
  const cached = join(cacheDir(), c.kind, `${key}.so`);
  const command = quoteCommand(c.command);
  const record = { kind: c.kind, key, sourcePath: c.sourcePath };
  const deliver = () => (identity && placeholder ? writeFileSync(c.output, replaceBytes(readFileSync(cached), placeholder, identity, cached)) : copyFileSync(cached, c.output));
  if (existsSync(cached)) {
    deliver();
    logCompile({ ...record, cached: true, cpuSeconds: 0, wallSeconds: 0 }, keyText);
    return { cached: true, command };
  }
  mkdirSync(join(cacheDir(), c.kind), { recursive: true });
  const tmp = `${cached}.tmp-${process.pid}`;
  // With an identity, g++ compiles the placeholder's source, kept beside the library: the emu kernels' shared
  // memory checks name their __FILE__, which is then this one. Written whole before its rename, for a build
  // in another process compiling the same key.
  const source = placeholder ? join(cacheDir(), c.kind, `${key}.cc`) : c.sourcePath;
  if (placeholder) {
    writeFileSync(`${source}.tmp-${process.pid}`, keyText);
    renameSync(`${source}.tmp-${process.pid}`, source);
  }
  const cpuBefore = childCpuSeconds(), wallBefore = performance.now();
  const args = c.command.map((a) => (a === c.sourcePath ? source : a === c.output ? tmp : a));
  const r = spawnSync(args[0], args.slice(1), { encoding: 'utf8' });
  if (r.error) throw new ToolchainError(`cannot run g++ (${r.error.message}); install it (apt-get install g++)`);
  if (r.status !== 0) throw new ToolchainError(`${c.what} failed on the generated ${c.sourcePath}:\n${r.stderr.trim()}\nrepro: ${command}`);
  renameSync(tmp, cached);
  deliver();
  logCompile({ ...record, cached: false, cpuSeconds: childCpuSeconds() - cpuBefore, wallSeconds: (performance.now() - wallBefore) / 1000 }, keyText);
  return { cached: false, command };
}

/** `bytes` with every occurrence of `from` replaced by `to` (same length); at least one must be there. */
function replaceBytes(bytes: Buffer, from: string, to: string, where: string): Buffer {
  const a = Buffer.from(from), b = Buffer.from(to);
  let found = 0;
  for (let i = bytes.indexOf(a); i >= 0; i = bytes.indexOf(a, i + a.length), found++) b.copy(bytes, i);
  if (found === 0) throw new ToolchainError(`internal error: ${where} does not hold the source hash placeholder`);
  return bytes;
}
