// Programs that must fail (Halide style): each test/specs/CODE-what.model renders exactly its .expected,
// every diagnostic in it has that CODE, and every error code of the front end has at least one such file.
// After changing a message on purpose: UPDATE_EXPECTED=1 npx vitest run test/diagnostics.test.ts, then review the diff.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileSpec } from '../compiler/pipeline.js';
import { renderDiagnostics } from '../grammar/diagnostics.js';
import { diagnosticProblems } from './span-invariants.js';

const dir = new URL('./specs/', import.meta.url);
const update = process.env.UPDATE_EXPECTED === '1';

/** Every code the front end emits, with what it means: a file for each must be in test/specs/. */
const codes: Record<string, string> = {
  E001: 'unexpected token',
  E002: 'unterminated block',
  E003: 'invalid character',
  E004: 'a cost limit of the front end',
  E010: 'unknown layer',
  E011: 'unknown def',
  E012: 'wrong argument count',
  E013: 'duplicate def',
  E014: 'duplicate parameter name',
  E015: 'recursion',
  E016: 'unknown name in an expression',
  E017: 'def named like a built-in layer',
  E020: 'non-integer where an integer is required',
  E021: 'division by zero',
  E022: 'invalid argument value',
  E030: 'channel mismatch',
  E031: 'spatial size zero or negative',
  E032: 'pooling pad larger than half the kernel',
  E033: 'view/linear feature mismatch',
  E034: 'missing input',
  E035: 'rank mismatch',
  E036: 'duplicate header item',
  E037: 'no model',
  E038: 'bad input dims or imageSize',
  E039: 'bad transform',
  E040: 'overlapping regime ranges',
  E041: 'inverted regime range',
  E042: 'unknown train option',
  E043: 'bad train value',
  E050: 'branches that do not merge',
  E051: 'malformed block',
  E052: 'unknown or misplaced method',
};

const specs = readdirSync(dir).filter((f) => f.endsWith('.model')).sort();

function compile(name: string) {
  const source = readFileSync(new URL(name, dir), 'utf8');
  const result = compileSpec(source, name);
  return { source, result, rendered: renderDiagnostics(result.diagnostics, source) + '\n' };
}

describe('test/specs: one failing input per error code', () => {
  it('covers every error code, and names no other', () => {
    const covered = new Set(specs.map((f) => f.slice(0, 4)));
    expect([...covered].filter((c) => !(c in codes))).toEqual([]);
    expect(Object.keys(codes).filter((c) => !covered.has(c))).toEqual([]);
    for (const f of specs) expect(f, 'name files CODE-what.model').toMatch(/^E\d{3}-[a-z0-9-]+\.model$/);
  });

  it.each(specs)('%s renders exactly its .expected', (name) => {
    const { source, result, rendered } = compile(name);
    const expectedFile = new URL(name.replace(/\.model$/, '.expected'), dir);
    if (update) writeFileSync(expectedFile, rendered);
    expect(existsSync(expectedFile), `${name} has no .expected file`).toBe(true);
    expect(rendered).toBe(readFileSync(expectedFile, 'utf8'));

    // Only the code the file is named after, no model, and spans that are inside the file.
    expect(result.model).toBeUndefined();
    expect(result.diagnostics.length).toBeGreaterThan(0);
    expect(new Set(result.diagnostics.map((d) => d.code))).toEqual(new Set([name.slice(0, 4)]));
    expect(result.diagnostics.every((d) => d.severity === 'error')).toBe(true);
    expect(diagnosticProblems(source, name, result.diagnostics)).toEqual([]);
  });
});

describe('diagnostics in detail', () => {
  it('parser recovery reports several syntax errors in one run, each on its own line', () => {
    const { result } = compile('E001-unexpected-token.model');
    const lines = result.diagnostics.map((d) => d.span.start.line);
    expect(result.diagnostics.map((d) => d.code)).toEqual(['E001', 'E001']);
    expect(lines).toEqual([4, 5]);
  });

  it('one mistake echoed by recovery along a line is reported once', () => {
    const source = 'model m {\n  input 3x8x8\n  def mp(k) { (k, k, 2, 2) }\n  mp(3)\n}\n';
    const ds = compileSpec(source, 'm.model').diagnostics;
    expect(ds.map((d) => `${d.code} ${d.span.start.line}:${d.span.start.column} ${d.message}`)).toEqual([
      "E001 3:15 expected a layer, a def call or '}', found '('",
    ]);
  });

  it('an error inside a def names its call site: file, line and column of the call', () => {
    const { result } = compile('E030-channel-mismatch.model');
    const [d] = result.diagnostics;
    expect(d.message).toBe('conv expects 96 input planes, got 256');
    expect(d.notes[0]).toMatchObject({ message: 'in block(96, 256, …) at E030-channel-mismatch.model:16:3', span: { start: { line: 16, column: 3 } } });
  });

  it('an error two defs deep names both call sites, innermost first', () => {
    const { result } = compile('E030-nested-defs.model');
    expect(result.diagnostics[0].notes.slice(0, 2).map((n) => n.message)).toEqual([
      'in unit(3, 16) at E030-nested-defs.model:5:25',
      'in stage(3, 16) at E030-nested-defs.model:6:3',
    ]);
  });

  it('linear after a view without the average pool reads like Torch arithmetic', () => {
    const { result } = compile('E033-linear-features.model');
    expect(result.diagnostics[0].message).toBe('linear(1024, 1000) expects 1024 features, view gives 50176');
  });

  it('an error in a def met at every call is reported once; different values are all reported', () => {
    const source = [
      'model m {',
      '  input 3x8x8',
      '  def b(c, k) { conv(c, c, k, k)  relux }',
      '  b(3, 1.5)  b(3, 2.5)  b(3, 1)  b(3, 1)',
      '}',
      '',
    ].join('\n');
    const ds = compileSpec(source, 'm.model').diagnostics;
    expect(ds.map((d) => `${d.code} ${d.message} [${d.notes.map((n) => n.message).join('; ')}]`)).toEqual([
      'E020 conv argument kW must be an integer, got 1.5 [in b(3, 1.5) at m.model:4:3]',
      "E010 unknown layer 'relux' (did you mean 'relu'?) [in b(3, 1.5) at m.model:4:3]",
      'E020 conv argument kW must be an integer, got 2.5 [in b(3, 2.5) at m.model:4:14]',
    ]);
  });

  it('CRLF line ends and a lone CR keep lines and columns as the renderer counts them', () => {
    const source = 'model m {\r\n  input 3x8x8\r\n  conv(3, 4, 3 3)\r\n}\r\n';
    const [d] = compileSpec(source, 'm.model').diagnostics;
    expect(d.span.start).toMatchObject({ line: 3, column: 16 });
    const lone = 'model m {\r  input 3x8x8\n  relu relux\n}\n';
    const [e] = compileSpec(lone, 'm.model').diagnostics;
    expect(e).toMatchObject({ code: 'E010', span: { start: { line: 2, column: 8 } } });
    expect(renderDiagnostics([e], lone).split('\n').slice(1)).toEqual(['    relu relux', '         ^^^^^']);
  });

  it('an unknown character outside ASCII is named by its code point, a run of them once', () => {
    const source = 'model m {\n  input 3x8x8 \u200b\n  relu 😀😀\n}\n';
    const ds = compileSpec(source, 'm.model').diagnostics;
    expect(ds.map((d) => [d.message, d.span.end.offset - d.span.start.offset])).toEqual([
      ['unexpected character U+200B', 1],
      ["unexpected characters '😀' (U+1F600) '😀' (U+1F600)", 4],
    ]);
  });

  it('the empty file and a file of only a comment have no model, with a caret at 1:1', () => {
    for (const source of ['', '# nothing here\n']) {
      const ds = compileSpec(source, 'e.model').diagnostics;
      expect(ds.map((d) => d.code)).toEqual(['E037']);
      expect(renderDiagnostics(ds, source).split('\n')[0]).toBe("e.model:1:1: error E037: no 'model NAME { … }' in this file");
    }
  });

  it('runaway nesting and expansion end in a diagnostic, not a stack overflow or a hang', () => {
    const parens = `model m {\n  input 3x8x8\n  conv(${'('.repeat(5000)}3${')'.repeat(5000)}, 4, 1, 1)\n}\n`;
    expect(compileSpec(parens, 'm.model').diagnostics.map((d) => `${d.code} ${d.span.start.line}:${d.span.start.column} ${d.message}`)).toEqual([
      "E001 3:70 nesting deeper than 64 levels of '(', '{' or '-'",
    ]);
    const minus = `model m {\n  input 3x8x8\n  conv(${'-'.repeat(5000)}3, 4, 1, 1)\n}\n`;
    expect(compileSpec(minus, 'm.model').diagnostics.map((d) => d.code)).toEqual(['E001']);

    const chain = (n: number, last: string) =>
      `model m {\n  input 3x8x8\n${Array.from({ length: n }, (_, i) => `  def d${i}() { ${last === 'ring' ? `d${(i + 1) % n}()` : `d${i + 1}()`} }`).join('\n')}\n${last === 'ring' ? '' : `  def d${n}() { ${last} }\n`}  d0()\n}\n`;
    expect(compileSpec(chain(60, 'relu'), 'm.model').model?.layers).toHaveLength(1); // deep but fine
    const deep = compileSpec(chain(5000, 'relu'), 'm.model').diagnostics;
    expect(deep.map((d) => `${d.code} ${d.message} [${d.notes.map((n) => n.message).join('; ')}]`)).toEqual([
      'E015 defs nested more than 64 calls deep [in d63() at m.model:65:15; in d62() at m.model:64:15; … 62 more]',
    ]);

    // 2^40 calls from 40 defs that each call the next twice.
    const doubling = `model m {\n  input 3x8x8\n${Array.from({ length: 40 }, (_, i) => `  def d${i}() { d${i + 1}() d${i + 1}() }`).join('\n')}\n  def d40() { }\n  d0()\n}\n`;
    const started = Date.now();
    const blown = compileSpec(doubling, 'm.model').diagnostics;
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(blown.map((d) => `${d.code} ${d.span.start.line}:${d.span.start.column} ${d.message}`)).toEqual([
      'E015 1:7 the defs expand to more than 100000 calls: some def calls others too many times over',
    ]);
  });

  it('sizes beyond int32 are refused before shape inference', () => {
    const big = compileSpec('model m {\n  input 3x8x8\n  conv(3, 99999999999, 1, 1)\n}\n', 'm.model').diagnostics;
    expect(big.map((d) => d.message)).toEqual(['conv argument nOutputPlane is too large, got 99999999999 (at most 2147483647)']);
    const input = compileSpec('model m {\n  input 3x99999999999x8\n  relu\n}\n', 'm.model').diagnostics;
    expect(input.map((d) => d.code)).toEqual(['E038']);
  });
});
