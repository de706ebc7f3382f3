// The command line of bench/cpu.ts (`npm run bench:cpu -- …`): its options, each with its help line,
// parsed into plain values, or --help's text, or a clear error naming the option that is wrong.
import { parseArgs } from 'node:util';

const OPTIONS = {
  runs: { type: 'string', arg: 'N', default: '15', help: 'timed runs per case in the interleaved passes' },
  warmup: { type: 'string', arg: 'N', default: '3', help: 'untimed warm-up runs per case before each pass' },
  standalone: { type: 'string', arg: 'N', default: '', help: 'timed runs per case in the standalone pass (default: --runs)' },
  models: { type: 'string', arg: 'SPECS', default: 'models/nin.model,models/nin-fashion.model,models/resnet-50.model', help: 'comma-separated specs to build and time' },
  work: { type: 'string', arg: 'DIR', default: 'build/bench-cpu', help: 'folder for the built artifacts, weights and .onnx files' },
  seed: { type: 'string', arg: 'N', default: '1', help: 'seed of the weights both engines run' },
  json: { type: 'string', arg: 'FILE', help: 'also write every timing to this JSON file' },
  help: { type: 'boolean', short: 'h', help: 'print this help and exit' },
} as const;

export interface CpuBenchOptions {
  readonly runs: number;
  readonly warmup: number;
  readonly standaloneRuns: number;
  readonly models: readonly string[];
  readonly work: string;
  readonly seed: number;
  readonly json?: string;
}

export const CPU_BENCH_USAGE = [
  'usage: node dist/bench/cpu.js [options]   (or: npm run bench:cpu -- [options])',
  'Times nincc\'s cpu device against onnxruntime-node (and PyTorch where python3 imports torch) on each spec,',
  'after checking that the engines agree. Options:',
  ...Object.entries(OPTIONS).map(([name, o]) => {
    const flag = `  --${name}${'arg' in o ? ` ${o.arg}` : ''}`.padEnd(20);
    const fallback = 'default' in o && o.default !== '' ? ` (default ${o.default})` : '';
    return `${flag}${o.help}${fallback}`;
  }),
].join('\n');

/** A count option's value as an integer of at least `min`, or the error that says what was given. */
function count(name: string, text: string, min: number): number | string {
  const v = Number(text);
  return Number.isInteger(v) && v >= min ? v : `--${name} must be an integer of at least ${min}, got '${text}'`;
}

/** The options of `argv`, or 'help', or an error message (the caller prints it with the usage and exits 2). */
export function parseCpuBenchArgs(argv: readonly string[]): CpuBenchOptions | 'help' | { readonly error: string } {
  // parseArgs's own fields of each option (it refuses ours: arg, help).
  const options = Object.fromEntries(
    Object.entries(OPTIONS).map(([name, o]) => [name, { type: o.type, ...('short' in o ? { short: o.short } : {}), ...('default' in o ? { default: o.default } : {}) }]),
  );
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    // parseArgs's own message names the option ("Unknown option '--bogus'"); drop its hint about '--' and positionals.
    return { error: (e as Error).message.split('. ')[0] };
  }
  if (values.help) return 'help';
  const runs = count('runs', values.runs as string, 1);
  const warmup = count('warmup', values.warmup as string, 0);
  const standalone = values.standalone ? count('standalone', values.standalone as string, 1) : runs;
  const seed = count('seed', values.seed as string, 0);
  for (const v of [runs, warmup, standalone, seed]) if (typeof v === 'string') return { error: v };
  const models = (values.models as string).split(',').filter((m) => m !== '');
  if (models.length === 0) return { error: '--models names no spec' };
  return { runs: runs as number, warmup: warmup as number, standaloneRuns: standalone as number, models, work: values.work as string, seed: seed as number, json: values.json as string | undefined };
}
