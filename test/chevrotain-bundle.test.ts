// grammar/chevrotain.ts: the parser's chevrotain is the package's single-file bundle, not its entry's module tree,
// whose import took seconds of every nincc process (bench/RESULTS.md "ciT: CI time"); a chevrotain release
// without lib/chevrotain.mjs would fall back to the slow entry silently, so this test says so.
import { existsSync, readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { chevrotainBundle, CstParser, createToken, EOF, Lexer } from '../grammar/chevrotain.js';
import { parseSpec } from '../grammar/parse.js';

describe('chevrotain', () => {
  it('comes from the bundle beside the package entry, one copy for every grammar module', async () => {
    expect(chevrotainBundle).toMatch(/node_modules\/chevrotain\/lib\/chevrotain\.mjs$/);
    expect(existsSync(chevrotainBundle)).toBe(true);
    const bundle = (await import(pathToFileURL(chevrotainBundle).href)) as typeof import('chevrotain');
    expect([CstParser, createToken, EOF, Lexer]).toEqual([bundle.CstParser, bundle.createToken, bundle.EOF, bundle.Lexer]);
    expect(CstParser).not.toBe((await import('chevrotain')).CstParser);
  });

  it('parses a spec through it', () => {
    const r = parseSpec(readFileSync('models/nin.model', 'utf8'), 'nin.model');
    expect(r.diagnostics).toEqual([]);
    expect(r.ast.models.map((m) => m.name)).toEqual(['nin']);
  });
});
