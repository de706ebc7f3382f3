// The grammar on its own: tokens, the AST of the shipped models and of small snippets, and Torch's
// defaults for omitted trailing arguments as they come out of def expansion.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { analyzeSpec, compileSpec } from '../compiler/pipeline.js';
import type { Call, Expr, Item, ModelDecl } from '../grammar/ast.js';
import { parseSpec } from '../grammar/parse.js';
import { specLexer } from '../grammar/tokens.js';

const models = ['nin.model', 'nin-nobn.model', 'nin-fashion.model'];
const read = (name: string) => readFileSync(new URL(`../models/${name}`, import.meta.url), 'utf8');

/** An expression as Lisp-ish text, so tree shapes read at a glance: (* (neg 1) nop). */
function sexpr(e: Expr): string {
  switch (e.kind) {
    case 'number':
      return e.integer ? e.text : `${e.text}f`;
    case 'name':
      return e.name;
    case 'neg':
      return `(neg ${sexpr(e.operand)})`;
    case 'binary':
      return `(${e.op} ${sexpr(e.left)} ${sexpr(e.right)})`;
  }
}

function parseModel(body: string): ModelDecl {
  const r = parseSpec(`model m {\n${body}\n}\n`, 'm.model');
  expect(r.diagnostics).toEqual([]);
  return r.ast.models[0];
}

/** The items of a body that must all be calls (no blocks), as calls. */
function calls(items: readonly Item[]): Call[] {
  return items.map((i) => {
    if (i.kind !== 'call') throw new Error(`expected a call, got the block '${i.name}'`);
    return i;
  });
}

const args = (body: string) => calls(parseModel(body).body).map((c) => `${c.name}(${c.args.map(sexpr).join(', ')})`);
const tokenNames = (source: string) => specLexer.tokenize(source).tokens.map((t) => `${t.tokenType.name}:${t.image}`);

describe('lexer', () => {
  it.each(models)('%s lexes without errors', (name) => {
    expect(specLexer.tokenize(read(name)).errors).toEqual([]);
  });

  it('tells floats, integers, dims and ranges apart', () => {
    expect(tokenNames('1e-3 1E+2 0.5 .5 2.0e-1 42 3x224x224 1..9 1...9')).toEqual([
      'Float:1e-3', 'Float:1E+2', 'Float:0.5', 'Float:.5', 'Float:2.0e-1', 'Integer:42', 'Dims:3x224x224',
      'Integer:1', 'DotDot:..', 'Integer:9', 'Integer:1', 'DotDot:..', 'Float:.9',
    ]);
  });

  it('keeps keywords whole words: modelx and define are names', () => {
    expect(tokenNames('model modelx def define train input imageSize transform')).toEqual([
      'Model:model', 'Identifier:modelx', 'Def:def', 'Identifier:define', 'Train:train', 'Input:input',
      'ImageSize:imageSize', 'Transform:transform',
    ]);
  });

  it('skips comments to the end of the line, braces in them included', () => {
    expect(tokenNames('relu # a } comment { (\n# whole line\nbn(3) #')).toEqual([
      'Identifier:relu', 'Identifier:bn', 'LParen:(', 'Integer:3', 'RParen:)',
    ]);
  });
});

describe('parser and AST', () => {
  it.each(models)('%s parses and compiles without diagnostics', (name) => {
    const source = read(name);
    expect(parseSpec(source, name).diagnostics).toEqual([]);
    const r = compileSpec(source, name);
    expect(r.diagnostics).toEqual([]);
    expect(r.model).toBeDefined();
  });

  it('nin.model: header, defs, calls with float literals, and the train block', () => {
    const ast = parseSpec(read('nin.model'), 'nin.model').ast;
    expect(ast.models).toHaveLength(1);
    const m = ast.models[0];
    expect(m.name).toBe('nin');
    expect(m.inputs.map((i) => i.dims)).toEqual([[3, 224, 224]]);
    expect(m.imageSizes.map((i) => i.value)).toEqual([256]);
    expect(m.transforms[0].settings.map((s) => [s.name, s.value])).toMatchObject([
      ['mean', { kind: 'numbers', values: [0.48462227599918, 0.45624044862054, 0.40588363755159] }],
      ['std', { kind: 'numbers', values: [0.22889466674951, 0.22446679341259, 0.22495548344775] }],
    ]);
    expect(m.defs.map((d) => `${d.name}(${d.params.map((p) => p.name).join(', ')}) ${d.body.length}`)).toEqual([
      'block(nip, nop, kw, kh, dw, dh, pw, ph) 9',
      'mp(kw, kh, dw, dh, pw, ph) 1',
    ]);
    // bn(nop, 1e-3): the float literal keeps its value, its text, and that it is not an integer.
    const bn = calls(m.defs[0].body)[1];
    expect(bn.name).toBe('bn');
    expect(bn.args[1]).toMatchObject({ kind: 'number', value: 0.001, integer: false, text: '1e-3' });
    expect(m.body.map((c) => c.name)).toEqual(['block', 'mp', 'block', 'mp', 'block', 'mp', 'block', 'avgpool', 'view', 'linear', 'logsoftmax']);
    expect(calls(m.body).map((c) => c.args.length)).toEqual([8, 6, 8, 6, 8, 6, 8, 4, 1, 2, 0]);
    expect(sexpr(calls(m.body)[8].args[0])).toBe('(neg 1)'); // view(-1)

    const train = ast.trains[0].settings;
    expect(train.map((s) => s.name)).toEqual(['batch', 'epochs', 'criterion', 'optimizer', 'regime']);
    expect(train[2].value).toMatchObject({ kind: 'word', word: 'nll' });
    expect(train[3]).toMatchObject({ value: { kind: 'word', word: 'sgd' }, block: [{ name: 'momentum', value: { values: [0.9] } }] });
    const regime = train[4].block!;
    expect(regime.filter((s) => s.name === 'epochs').map((s) => s.value)).toMatchObject([
      { kind: 'range', from: 1, to: 9 },
      { kind: 'range', from: 10, to: 19 },
      { kind: 'range', from: 20, to: 25 },
      { kind: 'range', from: 26, to: 30 },
    ]);
    expect(regime.filter((s) => s.name === 'lr').map((s) => s.value)).toMatchObject([0.1, 0.01, 0.001, 0.0001].map((v) => ({ values: [v], integer: [false] })));
  });

  it('spans point at the source: a call, its name, and an argument', () => {
    const source = read('nin.model');
    const [call] = calls(parseSpec(source, 'nin.model').ast.models[0].body);
    expect(source.slice(call.span.start.offset, call.span.end.offset)).toBe('block(3, 96, 11, 11, 4, 4, 5, 5)');
    expect(call.span).toMatchObject({ file: 'nin.model', start: { line: 16, column: 3 }, end: { line: 16, column: 35 } });
    expect(source.slice(call.nameSpan.start.offset, call.nameSpan.end.offset)).toBe('block');
    expect(source.slice(call.args[2].span.start.offset, call.args[2].span.end.offset)).toBe('11');
  });

  it('arithmetic: precedence, left associativity, parentheses and unary minus', () => {
    expect(args('f(nop*2, (a+1)/2, a+1/2, 8-2-1, 16/4/2, -a*2, -(a+1), - -3, 2*-a, -1e-3)')).toEqual([
      'f((* nop 2), (/ (+ a 1) 2), (+ a (/ 1 2)), (- (- 8 2) 1), (/ (/ 16 4) 2), (* (neg a) 2), (neg (+ a 1)), (neg (neg 3)), (* 2 (neg a)), (neg 1e-3f))',
    ]);
  });

  it('a parenthesized argument spans its parentheses', () => {
    const [call] = calls(parseModel('f((a+1)/2)').body);
    const source = 'model m {\nf((a+1)/2)\n}\n';
    const e = call.args[0];
    expect(source.slice(e.span.start.offset, e.span.end.offset)).toBe('(a+1)/2');
    expect(e.kind === 'binary' && source.slice(e.left.span.start.offset, e.left.span.end.offset)).toBe('(a+1)');
  });

  it('bare layers, empty argument lists and comments between calls', () => {
    expect(args('relu  # after a call\n  # a whole line\n  logsoftmax() view(-1, 4)')).toEqual(['relu()', 'logsoftmax()', 'view((neg 1), 4)']);
    expect(calls(parseModel('relu').body)[0].args).toEqual([]);
  });

  it('a def with no parameters, and defs after calls', () => {
    const m = parseModel('a()  def a() { relu }  def b(x) { conv(x, x, 1, 1) }');
    expect(m.defs.map((d) => [d.name, d.params.length, d.body.length])).toEqual([['a', 0, 1], ['b', 1, 1]]);
    expect(m.body.map((c) => c.name)).toEqual(['a']);
  });

  it('train settings: several numbers, words, ranges, dims and nested blocks', () => {
    const r = parseSpec('train { a 1 -2 3.5  b word  c 3..4  d 1x2x3  e { f 1 } g }', 't.model');
    expect(r.diagnostics).toEqual([]);
    expect(r.ast.trains[0].settings.map((s) => [s.name, s.value, s.block?.map((b) => b.name)])).toMatchObject([
      ['a', { kind: 'numbers', values: [1, -2, 3.5], integer: [true, true, false] }, undefined],
      ['b', { kind: 'word', word: 'word' }, undefined],
      ['c', { kind: 'range', from: 3, to: 4 }, undefined],
      ['d', { kind: 'dims', dims: [1, 2, 3] }, undefined],
      ['e', undefined, ['f']],
      ['g', undefined, undefined],
    ]);
  });
});

describe("Torch's defaults for omitted trailing arguments", () => {
  const compiled = compileSpec(
    [
      'model d {',
      '  input 3x40x64',
      '  conv(3, 8, 3, 3)                # dW = dH = 1, padW = padH = 0',
      '  conv(8, 8, 3, 3, 2)             # dH = 1',
      '  conv(8, 8, 3, 3, 1, 1, 1)       # padH = padW',
      '  conv(8, 8, 1, 3, 1, 1, 0, 1)    # all given',
      '  bn(8)  relu',
      '  maxpool(2, 2)                   # dW = kW, dH = kH',
      '  maxpool(3, 2)',
      '  maxpool(2, 2, 1)                # dH = kH',
      '  avgpool(2, 2)                   # dW = dH = 1',
      '  avgpool(3, 3, 2, 2, 1)          # padH = 0 (pooling has no padH = padW rule)',
      '  view(-1)  linear(16, 4)  dropout  logsoftmax',
      '}',
      '',
    ].join('\n'),
    'd.model',
  );
  const layers = compiled.model?.layers ?? [];
  const attrs = (i: number) => layers[i - 1].attrs;

  it('the spec compiles', () => {
    expect(compiled.diagnostics).toEqual([]);
    expect(layers.map((l) => l.kind)).toEqual([
      'conv', 'conv', 'conv', 'conv', 'bn', 'relu', 'maxpool', 'maxpool', 'maxpool', 'avgpool', 'avgpool', 'view', 'linear', 'dropout', 'logsoftmax',
    ]);
  });

  it('conv: dW = dH = 1 and pad 0; padH defaults to padW', () => {
    expect(attrs(1)).toEqual({ nIn: 3, nOut: 8, kW: 3, kH: 3, dW: 1, dH: 1, padW: 0, padH: 0, bias: true });
    expect(attrs(2)).toMatchObject({ dW: 2, dH: 1, padW: 0, padH: 0 });
    expect(attrs(3)).toMatchObject({ dW: 1, dH: 1, padW: 1, padH: 1 });
    expect(attrs(4)).toMatchObject({ kW: 1, kH: 3, padW: 0, padH: 1 });
  });

  it('bn: eps 1e-5, momentum 0.1, affine', () => {
    expect(attrs(5)).toEqual({ nFeatures: 8, eps: 1e-5, momentum: 0.1, affine: true });
  });

  it('maxpool: dW = kW and dH = kH; pad 0', () => {
    expect(attrs(7)).toEqual({ kW: 2, kH: 2, dW: 2, dH: 2, padW: 0, padH: 0 });
    expect(attrs(8)).toEqual({ kW: 3, kH: 2, dW: 3, dH: 2, padW: 0, padH: 0 });
    expect(attrs(9)).toEqual({ kW: 2, kH: 2, dW: 1, dH: 2, padW: 0, padH: 0 });
  });

  it('avgpool: dW = dH = 1; pad 0', () => {
    expect(attrs(10)).toEqual({ kW: 2, kH: 2, dW: 1, dH: 1, padW: 0, padH: 0 });
    expect(attrs(11)).toEqual({ kW: 3, kH: 3, dW: 2, dH: 2, padW: 1, padH: 0 });
  });

  it('linear has a bias and dropout p = 0.5', () => {
    expect(attrs(13)).toEqual({ nIn: 16, nOut: 4, bias: true });
    expect(attrs(14)).toEqual({ p: 0.5 });
  });

  it('the shapes follow from the defaults', () => {
    expect(layers.map((l) => l.output.join('x'))).toEqual([
      '8x38x62', '8x36x30', '8x36x30', '8x36x30', '8x36x30', '8x36x30', '8x18x15', '8x9x5', '8x4x4', '8x3x3', '8x1x2',
      '16', '4', '4', '4',
    ]);
  });

  it("nin-fashion's conv(nop, nop, 1, 1) expands like nin's conv(nop, nop, 1, 1, 1, 1, 0, 0)", () => {
    const fashion = compileSpec(read('nin-fashion.model'), 'nin-fashion.model').model!;
    expect(fashion.layers[3]).toMatchObject({ kind: 'conv', attrs: { nIn: 32, nOut: 32, kW: 1, kH: 1, dW: 1, dH: 1, padW: 0, padH: 0 } });
    expect(fashion.layers[3].callSites.map((s) => `${s.def}(${s.args.join(', ')})`)).toEqual(['block(1, 32, 5, 2)']);
  });

  it('the shipped models expand to the Torch module counts', () => {
    const count = (name: string) => compileSpec(read(name), name).model!.layers.length;
    expect(count('nin.model')).toBe(43);
    expect(count('nin-nobn.model')).toBe(30);
  });
});

describe("Torch's defaults and methods of the zoo's layers (issue #17)", () => {
  const analysed = analyzeSpec(
    [
      'model z {',
      '  input 8x10x10',
      '  lrn(5)                          # alpha 0.0001, beta 0.75, k 1',
      '  lrn(3, 1e-3, 0.5, 2)',
      '  threshold                       # th 1e-6, v 0',
      '  threshold(0.5)',
      '  zeropad(2)                      # r = t = b = l',
      '  zeropad(1, -1)                  # t = b = l',
      '  tanh  sigmoid  identity',
      '  conv(8, 4, 3, 3):noBias()',
      '  maxpool(2, 2):ceil()  maxpool(2, 2):ceil:floor()',
      '  view(-1)  linear(36, 2):noBias()',
      '}',
      '',
    ].join('\n'),
    'z.model',
  );
  const nodes = analysed.network?.nodes ?? [];
  const attrs = (i: number) => {
    const n = nodes[i - 1];
    return 'attrs' in n ? n.attrs : undefined;
  };

  it('the spec checks, and its layers keep their Torch argument order', () => {
    expect(analysed.diagnostics).toEqual([]);
    expect(attrs(1)).toEqual({ size: 5, alpha: 0.0001, beta: 0.75, k: 1 });
    expect(attrs(2)).toEqual({ size: 3, alpha: 1e-3, beta: 0.5, k: 2 });
    expect(attrs(3)).toEqual({ th: 1e-6, v: 0 });
    expect(attrs(4)).toEqual({ th: 0.5, v: 0 });
    expect(attrs(5)).toEqual({ l: 2, r: 2, t: 2, b: 2 });
    expect(attrs(6)).toEqual({ l: 1, r: -1, t: 1, b: 1 });
  });

  it(':noBias() drops the bias; :ceil() sets ceil mode and :floor() clears it, the last one written winning', () => {
    expect(attrs(10)).toMatchObject({ bias: false });
    expect(attrs(11)).toMatchObject({ ceil: true });
    expect(attrs(12)).not.toHaveProperty('ceil');
    expect(attrs(14)).toEqual({ nIn: 36, nOut: 2, bias: false });
    expect(nodes[9].params).toBe(4 * 8 * 9);
    expect(nodes[13].params).toBe(72);
  });

  it('the shapes follow', () => {
    expect(nodes.map((n) => n.output.join('x'))).toEqual([
      '8x10x10', '8x10x10', '8x10x10', '8x10x10', '8x14x14', '8x16x14', '8x16x14', '8x16x14', '8x16x14', '4x14x12', '4x7x6', '4x3x3', '36', '2',
    ]);
  });
});

