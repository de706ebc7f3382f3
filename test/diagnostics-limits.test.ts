// Hostile and generated specs (issue #21, finding 2) and the comment and keyword frictions of issue #16:
// each old input now gets its own diagnostic at the offending place, never a stack overflow or a wrong code.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileSpec } from '../compiler/pipeline.js';
import { limits } from '../grammar/limits.js';
import { nincc } from './cli-run.js';

const scratch = mkdtempSync(join(tmpdir(), 'nincc-limits-'));
const summary = (source: string) => compileSpec(source, 'm.model').diagnostics.map((d) => `${d.code} ${d.span.start.line}:${d.span.start.column} ${d.message}`);
const model = (body: string, rest = '') => `model m {\n  input 1x8x8\n${body}\n}\n${rest}`;

describe('cost limits of the front end (E004)', () => {
  it('an argument summing 100,000 terms stops at the operator past the limit', () => {
    const terms = Array(100_000).fill('1').join('+');
    // `  conv(1, ` is 10 characters; operator k (1-based) is at column 10 + 2k.
    expect(summary(model(`  conv(1, ${terms}, 3, 3)`))).toEqual([`E004 3:${10 + 2 * (limits.operators + 1)} an argument with more than 256 operators`]);
    // At the limit the sum is fine and exact.
    const fine = compileSpec(model(`  conv(1, ${Array(limits.operators + 1).fill('1').join('+')}, 3, 3)`), 'm.model');
    expect(fine.model?.layers[0].output).toEqual([257, 6, 6]);
  });

  it('a call with 100,000 arguments and a def with 100 parameters stop at the first argument past the limit', () => {
    expect(summary(model(`  conv(${Array(100_000).fill('1').join(',')})`))).toEqual(['E004 3:136 a call with more than 64 arguments']);
    const params = Array.from({ length: 100 }, (_, i) => `p${i}`).join(', ');
    expect(summary(model(`  def d(${params}) { relu }\n  d()`))).toEqual([`E004 3:${9 + params.indexOf('p64')} a def with more than 64 parameters`]);
  });

  it('a spec over the size limit (100,000 regime rows; 10 MB of relu lines) is refused before lexing, not reported as E015', () => {
    const rows = Array.from({ length: 100_000 }, (_, i) => `    epochs ${i + 1}..${i + 1} lr 0.1\n`).join('');
    const regime = model('  view(-1)\n  linear(64, 10)\n  logsoftmax', `train {\n  regime {\n${rows}  }\n}\n`);
    expect(summary(regime)).toEqual([`E004 1:1 the spec is ${regime.length.toLocaleString('en-US')} characters long, more than the limit of 1,048,576`]);
    const relus = model('  relu\n'.repeat(1_500_000));
    const started = Date.now();
    expect(summary(relus)).toEqual([`E004 1:1 the spec is ${relus.length.toLocaleString('en-US')} characters long, more than the limit of 1,048,576`]);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('more layer lines than the limit, with no defs, is its own error at the first line past it', () => {
    const source = model('relu\n'.repeat(limits.layerLines + 10));
    expect(summary(source)).toEqual([`E004 ${limits.layerLines + 3}:1 model m has 100,010 layer lines, more than the limit of 100,000`]);
  });

  it('100,000 transform values reach the transform check (E039), not a stack overflow', () => {
    const values = Array(100_000).fill('0.5').join(' ');
    expect(summary(model(`  transform { mean ${values} }`)).map((d) => d.slice(0, 60))).toEqual(['E039 3:20 transform mean has 100000 values but the input has']);
  });

  it('integers past 2^53 are refused where they are written, not rounded', () => {
    expect(summary(model('  conv(1, 99999999999999999999, 1, 1)'))).toEqual(['E004 3:11 the integer 99999999999999999999 is larger than 2^53 and cannot be held exactly']);
    expect(summary('model m {\n  input 3x9007199254740993x2\n  relu\n}\n')).toEqual(['E004 2:9 the integer 9007199254740993 is larger than 2^53 and cannot be held exactly']);
  });

  it('sizes, weights and MACs past exact integer limits are refused with exact figures, not rounded floats', () => {
    expect(summary('model m {\n  input 3x2147483647x2147483647\n  relu\n}\n')).toEqual([
      'E038 2:3 input 3x2147483647x2147483647 has 13835058042397261827 elements, more than the 2147483647 an image may have',
    ]);
    expect(summary(model('  conv(1, 1e9, 1, 1)'))).toEqual(['E004 3:3 conv output 1000000000x8x8 has 64000000000 elements per image, more than the limit of 2147483647']);
    expect(summary('model m {\n  input 1x1x1\n  view(-1)\n  linear(1, 100000)\n  linear(100000, 100000)\n}\n')).toEqual([
      'E004 5:3 linear has 10000000000 weights, more than the limit of 2147483647',
    ]);
    expect(summary('model m {\n  input 1x1x1\n  view(-1)\n  linear(1, 40000)\n  linear(40000, 40000)\n  linear(40000, 40000)\n}\n')).toEqual([
      'E004 6:3 the model has 3200160000 parameters, more than the limit of 2147483647',
    ]);
  });

  it('through the CLI: exit 1 and the file and line, with a long line shown around the caret', () => {
    const file = join(scratch, 'sum.model');
    writeFileSync(file, model(`  conv(1, ${Array(100_000).fill('1').join('+')}, 3, 3)`));
    const r = nincc(['check', file]);
    expect(r.code).toBe(1);
    const lines = r.stderr.split('\n');
    expect(lines[0]).toBe(`${file}:3:524: error E004: an argument with more than 256 operators`);
    expect(lines[1].length).toBeLessThan(200);
    expect(lines[1][lines[2].indexOf('^')]).toBe('+');
  });
});

describe('generated hostile specs', () => {
  it('100 specs of random deep and wide pieces each end in diagnostics or a model, never a throw', () => {
    let seed = 16021;
    const next = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const pick = <T,>(xs: readonly T[]) => xs[Math.floor(next() * xs.length)];
    const count = () => Math.floor(next() ** 3 * 20_000);
    const pieces: (() => string)[] = [
      () => `conv(1, ${Array(count()).fill('1').join(pick(['+', '*', '-', '/']))}, 1, 1)`,
      () => `conv(${Array(count()).fill('2').join(', ')})`,
      () => `${'('.repeat(count() % 200)}1${')'.repeat(count() % 200)}`,
      () => `view(${'- '.repeat(count() % 300)}1)`,
      () => 'relu\n'.repeat(count()),
      () => `def d${count()}(${Array(count() % 200).fill('a').join(', ')}) { relu }`,
      () => `transform { mean ${Array(count()).fill('0.5').join(' ')} }`,
      () => pick(['// c\n', '-- c\n', '# c\n', '{', '}', '99999999999999999999', '3x99999999999x2', 'inptu 1x8x8\n', ',', ')']),
    ];
    for (let i = 0; i < 100; i++) {
      const body = Array.from({ length: 1 + Math.floor(next() * 4) }, () => pick(pieces)()).join('\n  ');
      const source = model(`  ${body}`, next() < 0.3 ? `train {\n  regime {\n${'    epochs 1..2 lr 0.1\n'.repeat(count())}  }\n}\n` : '');
      const r = compileSpec(source, 'm.model');
      expect(r.model !== undefined || r.diagnostics.length > 0).toBe(true);
      for (const d of r.diagnostics) expect(d.span.start.offset).toBeLessThanOrEqual(source.length);
    }
  });
});

describe('comments and misspelled keywords (issue #16)', () => {
  it("'--' starts a comment, as in Lua", () => {
    const source = '-- a Lua-style comment\nmodel m {  -- and after code\n  input 1x8x8\n  view(-1) -- -1 is all\n  linear(64, 2)\n}\n';
    expect(compileSpec(source, 'm.model').diagnostics).toEqual([]);
  });

  it("'//' comments are one error with the hint, not one per '/'", () => {
    const source = '// a C-style comment\n// another\nmodel m {\n  input 1x8x8 // trailing\n  relu\n}\n';
    const ds = compileSpec(source, 'm.model').diagnostics;
    expect(ds.map((d) => `${d.code} ${d.span.start.line}:${d.span.start.column} ${d.message} [${d.notes.map((n) => n.message).join('; ')}]`)).toEqual([
      "E003 1:1 '//' does not start a comment in a spec: use '#' or '--' [2 more lines use '//' (the next at m.model:2:1)]",
    ]);
  });

  it("'cnov' gets \"did you mean 'conv'?\" (two letters swapped are one edit), not the list of every layer", () => {
    expect(summary(model('  cnov(1, 8, 3, 3)'))).toEqual(["E010 3:3 unknown layer 'cnov' (did you mean 'conv'?)"]);
    expect(summary(model('  view(-1)  linear(64, 2)  logsoftmax', 'train {\n  bacth 8\n}\n'))).toEqual(["E042 6:3 unknown train option 'bacth' (did you mean 'batch'?)"]);
    expect(summary(model('  transform { maen 0.5  std 0.2 }\n  relu'))).toEqual(["E039 3:15 unknown transform entry 'maen' (did you mean 'mean'?)"]);
  });

  it('an unknown train option no longer hides the channel mismatch, negative output size and linear mismatch: all in one run, in file order', () => {
    const source = model('  conv(3, 8, 3, 3)\n  relu\n  conv(8, 8, 40, 40)\n  view(-1)\n  linear(100, 10)\n  linear(20, 10)\n  logsoftmax', 'train {\n  batchsize 32\n}\n');
    expect(summary(source)).toEqual([
      'E030 3:3 conv expects 3 input planes, got 1',
      'E031 5:3 conv output would be -33x-33 (HxW): input height 6 is too small for kH 40 with dH 1 and padH 0, and input width 6 is too small for kW 40 with dW 1 and padW 0',
      'E033 8:3 linear(20, 10) expects 20 features, linear gives 10',
      "E042 12:3 unknown train option 'batchsize' (did you mean 'batch'?)",
    ]);
  });

  it('arity errors, unknown layers and shape errors come together; a failed call leaves the shape unknown only where it must', () => {
    const source = model('  conv(3, 8, 3, 3)\n  relu(1)\n  conv(8, 8, 40, 40)\n  cnov(8, 8)\n  view(-1)\n  linear(5, 5)\n  linear(7, 2)\n  logsoftmax');
    expect(summary(source)).toEqual([
      'E030 3:3 conv expects 3 input planes, got 1',
      'E012 4:3 relu takes no arguments, got 1',
      'E031 5:3 conv output would be -33x-33 (HxW): input height 6 is too small for kH 40 with dH 1 and padH 0, and input width 6 is too small for kW 40 with dW 1 and padW 0',
      "E010 6:3 unknown layer 'cnov' (did you mean 'conv'?)",
      'E033 9:3 linear(7, 2) expects 7 features, linear gives 5',
    ]);
  });

  it('a misspelled header keyword does not stop the semantic passes: keyword, shape, arity and train errors in one run, in file order', () => {
    const source = 'model m {\n  inptu 1x8x8\n  conv(3, 8, 3, 3)\n  relu(1)\n  imagSise 8\n  trnasform { mean 0.5 std 0.25 }\n  view(-1)\n}\ntrain {\n  epochs 1\n  bacth 8\n}\n';
    expect(summary(source)).toEqual([
      "E001 2:3 unknown keyword 'inptu' (did you mean 'input'?)",
      'E030 3:3 conv expects 3 input planes, got 1',
      'E012 4:3 relu takes no arguments, got 1',
      "E001 5:3 unknown keyword 'imagSise' (did you mean 'imageSize'?)",
      "E001 6:3 unknown keyword 'trnasform' (did you mean 'transform'?)",
      "E042 11:3 unknown train option 'bacth' (did you mean 'batch'?)",
    ]);
    // Repaired, the error still counts: no model.
    const repairedOnly = compileSpec('model m {\n  inptu 1x8x8\n  relu\n}\n', 'm.model');
    expect(repairedOnly.diagnostics.map((d) => d.code)).toEqual(['E001']);
    expect(repairedOnly.model).toBeUndefined();
  });

  it('thousands of bad lines stop after 100 syntax errors with their own diagnostic, not a stack overflow', () => {
    const source = `model m {\n${'  zzzzz 1x8x8\n'.repeat(5000)}}\n`;
    const found = summary(source);
    expect(found.length).toBe(102);
    expect(found[0]).toBe("E001 2:9 unexpected '1x8x8': expected a layer, a def call, 'def', 'input', 'imageSize', 'transform' or '}'");
    expect(found[101]).toBe('E004 102:3 more than 100 syntax errors: the rest of the file is not checked');
  });

  it("'modle m {' and 'trian {' are named and read as the keywords: the model's and the train block's errors come in the same run", () => {
    expect(summary('modle m {\n  input 1x8x8\n  conv(3, 8, 3, 3)\n}\ntrian {\n  bacth 8\n}\n')).toEqual([
      "E001 1:1 unknown keyword 'modle' (did you mean 'model'?)",
      'E030 3:3 conv expects 3 input planes, got 1',
      "E001 5:1 unknown keyword 'trian' (did you mean 'train'?)",
      "E042 6:3 unknown train option 'bacth' (did you mean 'batch'?)",
    ]);
    // Not followed by what the keyword takes: named, but the tree is not repaired and the run stops there.
    expect(summary('modle {\n  input 1x8x8\n  conv(3, 8, 3, 3)\n}\n')).toEqual(["E001 1:1 unknown keyword 'modle' (did you mean 'model'?)"]);
  });

  it('a syntax error that garbles the tree still stops the semantic passes (no echoes of it as shape errors)', () => {
    const source = 'model m {\n  inptu 1x8x8\n  conv(3, 8 3, 3)\n  relu(1)\n}\n';
    expect(summary(source).map((d) => d.split(' ').slice(0, 2).join(' '))).toEqual(['E001 2:3', 'E001 3:13']);
    expect(summary('model m {\n  inptu {\n  relu(1)\n}\n').map((d) => d.split(' ')[0])).not.toContain('E012');
  });

  it("'inptu 1x28x28' names the misspelled word and the keyword meant", () => {
    expect(summary('model m {\n  inptu 1x28x28\n  relu\n}\n')).toEqual(["E001 2:3 unknown keyword 'inptu' (did you mean 'input'?)"]);
    expect(summary('model m {\n  input 1x28x28\n  imagesise 32\n  relu\n}\n')).toEqual(["E001 3:3 unknown keyword 'imagesise' (did you mean 'imageSize'?)"]);
  });
});
