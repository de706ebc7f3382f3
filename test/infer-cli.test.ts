// `nincc infer` as issue #16 asked for it: class names from --classes or the classes.txt beside the
// weights, probabilities and top-k; the device from the artifact; options checked before any build;
// help wrapped to the terminal.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { artifactDevice } from '../bin/artifact-arg.js';
import { helpText, wrapText } from '../bin/command.js';
import { inferCommand } from '../bin/commands/infer.js';
import { writeNpy } from '../runtime/io/npy.js';
import { load } from '../runtime/model.js';
import { nincc } from './cli-run.js';
import { buildSpec, type Built } from './reference/artifacts.js';

const spec = `model pets {
  input 1x4x4
  conv(1, 2, 3, 3, 1, 1, 1, 1) relu
  view(-1) linear(32, 3) logsoftmax
}
`;

describe('nincc infer', () => {
  let work: string;
  let built: Built;
  let weights: string;
  let npy: string;
  let expected: Float32Array;
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'nincc-infer-'));
    built = buildSpec('pets', spec, 2);
    mkdirSync(join(work, 'run'));
    weights = join(work, 'run', 'checkpoint.safetensors');
    const m = await load(built.dir, { seed: 5 });
    await m.save(weights);
    const x = new Float32Array(2 * 16).map((_, i) => Math.sin(i));
    expected = await m.infer(x);
    await m.dispose();
    npy = join(work, 'x.npy');
    writeNpy(npy, { dtype: '<f4', shape: [2, 1, 4, 4], data: x });
  });
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** The line the command should print for image i: the k best classes by name, exp(log-prob) in percent. */
  const line = (i: number, k: number, names: readonly string[]) => {
    const row = Array.from(expected.subarray(i * 3, i * 3 + 3));
    const best = row.map((v, c) => [v, c] as const).sort((a, b) => b[0] - a[0]).slice(0, k);
    return `${npy}[${i}]: ${best.map(([v, c]) => `${names[c]} ${(Math.exp(v) * 100).toFixed(2)}%`).join('  ')}`;
  };

  it('prints probabilities by class index without a class list (was: log-probabilities)', () => {
    const r = nincc(['infer', built.dir, '--weights', weights, '--npy', npy]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([line(0, 5, ['0', '1', '2']), line(1, 5, ['0', '1', '2'])]);
  });

  it('names the classes from the classes.txt beside the weights, and from --classes, with --top', () => {
    writeFileSync(join(work, 'run', 'classes.txt'), 'cat\ndog\nhamster\n');
    const beside = nincc(['infer', built.dir, '--weights', weights, '--npy', npy, '--top', '2']);
    expect(beside.code, beside.stderr).toBe(0);
    expect(beside.stdout.trim().split('\n')).toEqual([line(0, 2, ['cat', 'dog', 'hamster']), line(1, 2, ['cat', 'dog', 'hamster'])]);
    const other = join(work, 'other.txt');
    writeFileSync(other, 'ant\nbee\nwasp\n');
    const given = nincc(['infer', built.dir, '--weights', weights, '--npy', npy, '-k', '1', '--classes', other]);
    expect(given.stdout.trim().split('\n')).toEqual([line(0, 1, ['ant', 'bee', 'wasp']), line(1, 1, ['ant', 'bee', 'wasp'])]);
    writeFileSync(other, 'ant\nbee\n');
    const wrong = nincc(['infer', built.dir, '--weights', weights, '--npy', npy, '--classes', other]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toBe(`nincc infer: ${other} names 2 classes but the model has 3\n`);
  });

  it('checks its options before building a spec', () => {
    const file = join(work, 'pets.model');
    writeFileSync(file, spec);
    const cases: [string[], string][] = [
      [['--device', 'tpu'], "unknown device 'tpu' (available: cpu, emu, cuda)"],
      [['--top', '0'], "--top must be an integer of at least 1, got '0'"],
      [['--weights', join(work, 'nope.safetensors')], `--weights ${join(work, 'nope.safetensors')}: no such file`],
      [['--classes', join(work, 'nope.txt')], `--classes ${join(work, 'nope.txt')}: no such class list`],
    ];
    for (const [extra, message] of cases) {
      const r = nincc(['infer', file, '--npy', npy, ...extra], { cwd: work });
      expect(r.code).toBe(2);
      expect(r.stderr).toBe(`nincc infer: ${message}\n`);
    }
    expect(existsSync(join(work, 'build'))).toBe(false);
  });

  it("runs on the artifact's own device by default", () => {
    const plan = (libraries: Record<string, string>) => {
      const dir = mkdtempSync(join(work, 'plan-'));
      writeFileSync(join(dir, 'plan.json'), JSON.stringify({ libraries }));
      return dir;
    };
    expect(artifactDevice(built.dir)).toBe('cpu');
    expect(artifactDevice(plan({ cpu: 'a.so', emu: 'b.so' }))).toBe('emu');
    expect(artifactDevice(plan({ cpu: 'a.so', emu: 'b.so', cuda: 'k.fatbin' }))).toBe('cuda');
  });

  it('wraps help to the terminal width', () => {
    for (const width of [50, 80, 120]) {
      const lines = helpText(inferCommand, width).split('\n').slice(1); // the usage line is not wrapped
      expect(lines.every((l) => l.length <= width), `width ${width}: ${lines.find((l) => l.length > width)}`).toBe(true);
    }
    expect(wrapText('one two three four', 9, '  ')).toEqual(['  one two', '  three', '  four']);
  });
});
