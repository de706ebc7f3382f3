// Builds test/data/fashion-mnist-mini/ (the Fashion-MNIST subset shipped for demos and tests) from
// the installed dataset. Run from the repo root after scripts/install-deps.sh:
//   npx tsc -p tsconfig.json && node dist/scripts/make-fashion-subset.js [--from DIR] [--to DIR] [--train N] [--test N]
// It keeps the first N examples of each split: the source order is already close to class-balanced
// (the first 6000 training images hold 560–643 per class), so no resampling is needed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { encodeIdx, readIdxFile, type IdxArray } from '../runtime/data/idx.js';
import {
  FASHION_MNIST_CLASS_NAMES,
  FASHION_MNIST_FILES,
  resolveFashionMnistDir,
  type FashionMnistSplit,
} from '../runtime/data/fashion-mnist.js';
import { writeFileAtomicSync } from '../runtime/io/atomic-write.js';

interface SubsetOptions {
  from: string;
  to: string;
  counts: Record<FashionMnistSplit, number>;
}

function parseArgs(argv: string[]): SubsetOptions {
  const opts: SubsetOptions = {
    from: 'fashion-mnist',
    to: 'test/data/fashion-mnist-mini',
    counts: { train: 6000, test: 1000 },
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === '--from') opts.from = value;
    else if (flag === '--to') opts.to = value;
    else if (flag === '--train' || flag === '--test') {
      const n = Number(value);
      if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${flag} must be a positive integer, got ${value}`);
      opts.counts[flag === '--train' ? 'train' : 'test'] = n;
    } else throw new Error(`unknown option ${flag} (known: --from, --to, --train, --test)`);
  }
  return opts;
}

/** The first `count` records of an IDX array (records run along the first dimension). */
function firstRecords(array: IdxArray, count: number, source: string): IdxArray {
  const available = array.dims[0];
  if (count > available) throw new Error(`${source} has only ${available} records, asked for ${count}`);
  const recordBytes = array.dims.slice(1).reduce((n, d) => n * d, 1);
  return { dims: [count, ...array.dims.slice(1)], data: array.data.subarray(0, count * recordBytes) };
}

function classCounts(labels: Uint8Array): number[] {
  const counts = new Array<number>(FASHION_MNIST_CLASS_NAMES.length).fill(0);
  for (const label of labels) counts[label]++;
  return counts;
}

function describeSubset(counts: Record<FashionMnistSplit, number[]>, opts: SubsetOptions): string {
  const rows = FASHION_MNIST_CLASS_NAMES.map(
    (name, i) => `| ${i} | ${name} | ${counts.train[i]} | ${counts.test[i]} |`,
  );
  return [
    '# Fashion-MNIST mini subset',
    '',
    'A small slice of Fashion-MNIST (Zalando SE, MIT licence; Debian package `dataset-fashion-mnist`)',
    'for demos and tests that must run without the full dataset. Same IDX `.gz` format and file names',
    'as /usr/share/datasets/fashion-mnist, so `loadFashionMnist` reads either directory.',
    '',
    `- train: the first ${opts.counts.train} training examples`,
    `- test (t10k): the first ${opts.counts.test} test examples`,
    '',
    'No resampling: the source order is already close to class-balanced.',
    'Regenerate with `scripts/make-fashion-subset.ts` (see its header for the command).',
    '',
    '| label | class | train | test |',
    '| --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}

function main(): void {
  const opts = parseArgs(process.argv.slice(2));
  const sourceDir = resolveFashionMnistDir(opts.from);
  fs.mkdirSync(opts.to, { recursive: true });
  const counts = {} as Record<FashionMnistSplit, number[]>;
  for (const split of ['train', 'test'] as const) {
    for (const kind of ['images', 'labels'] as const) {
      const name = FASHION_MNIST_FILES[split][kind];
      const source = path.join(sourceDir, name);
      const subset = firstRecords(readIdxFile(source), opts.counts[split], source);
      if (kind === 'labels') counts[split] = classCounts(subset.data);
      const target = path.join(opts.to, name);
      const bytes = encodeIdx(subset, { gzip: true });
      writeFileAtomicSync(target, bytes);
      console.log(`wrote ${target}: dims [${subset.dims.join(', ')}], ${bytes.length} bytes`);
    }
  }
  const readme = path.join(opts.to, 'README.md');
  writeFileAtomicSync(readme, describeSubset(counts, opts));
  console.log(`wrote ${readme}; per-class train ${counts.train.join(' ')}, test ${counts.test.join(' ')}`);
}

try {
  main();
} catch (err) {
  console.error(`make-fashion-subset: ${(err as Error).message}`);
  process.exit(1);
}
