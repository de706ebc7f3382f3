// Counts kernel-library compiles (bench/logs/ciB-times.md):
//   node dist/scripts/compile-log-summary.js DIR...      a NINCC_COMPILE_LOG folder each: compiles, cache hits, g++ CPU s
//   node dist/scripts/compile-log-summary.js --sources F...  generated kernels.cpu.cc / kernels.cu files: how many
//                                                          distinct ones, whole and with the source hash and comments aside
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { blankLineComments } from '../compiler/backends/compile-cached.js';

interface Line { readonly kind: string; readonly key: string; readonly cached: boolean; readonly cpuSeconds: number }

/** The text the cache key reads (compile-cached.ts): any 64-hex source hash and whole-line comments aside. */
const shared = (text: string) => blankLineComments(text.replace(/[0-9a-f]{64}/g, 'H'));

function summariseLogs(dirs: readonly string[]): void {
  for (const dir of dirs) {
    const lines = readFileSync(join(dir, 'compiles.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);
    for (const kind of [...new Set(lines.map((l) => l.kind))].sort()) {
      const of = lines.filter((l) => l.kind === kind);
      const compiled = of.filter((l) => !l.cached);
      const cpu = compiled.reduce((s, l) => s + l.cpuSeconds, 0);
      // The sources compiled, grouped as the shared key would: how many compiles a cache keyed that way would pay.
      const groups = new Set(compiled.map((l) => shared(readFileSync(join(dir, `${l.key}.${l.kind}.cc`), 'utf8'))));
      console.log(`${dir} ${kind}: ${of.length} builds, ${compiled.length} compiled (${cpu.toFixed(1)} g++ CPU s), ${of.length - compiled.length} cache hits; ${groups.size} distinct with the source hash and comments aside`);
    }
  }
}

function summariseSources(files: readonly string[]): void {
  const texts = files.map((f) => readFileSync(f, 'utf8'));
  console.log(`${files.length} sources: ${new Set(texts).size} distinct, ${new Set(texts.map(shared)).size} with the source hash and comments aside`);
}

const args = process.argv.slice(2);
if (args[0] === '--sources') summariseSources(args.slice(1));
else summariseLogs(args);
