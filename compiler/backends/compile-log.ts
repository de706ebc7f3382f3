// NINCC_COMPILE_LOG=dir: one JSON line per kernel-library compile (compile-cached.ts) in dir/compiles.jsonl,
// cached or not, with the g++ child's CPU seconds, and each compiled source once as dir/<key>.<kind>.cc, so
// the compiles a test run pays for can be counted and their kernels compared (bench/logs/ciB-times.md).
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** User + system CPU seconds of this process's waited-for children (/proc/self/stat cutime + cstime). */
export function childCpuSeconds(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[13]) + Number(fields[14])) / 100; // fields 16 and 17 of proc(5), clock ticks at 100 Hz
  } catch {
    return NaN;
  }
}

export interface CompileRecord {
  readonly kind: string;
  readonly key: string;
  readonly cached: boolean;
  readonly cpuSeconds: number; // 0 when cached
  readonly wallSeconds: number;
  readonly sourcePath: string;
}

/** Appends the record (and the source, once per key) when NINCC_COMPILE_LOG names a folder. */
export function logCompile(record: CompileRecord, sourceText: string): void {
  const dir = process.env.NINCC_COMPILE_LOG;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  const source = join(dir, `${record.key}.${record.kind}.cc`);
  if (!existsSync(source)) writeFileSync(source, sourceText);
  appendFileSync(join(dir, 'compiles.jsonl'), `${JSON.stringify({ ...record, pid: process.pid, at: new Date().toISOString() })}\n`);
}
