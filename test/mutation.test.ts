// Mutation fuzzing of the front end: thousands of seeded random edits of models/nin.model must each end
// in a valid model or in diagnostics whose spans lie inside the file, and never in an exception.
import { readFileSync } from 'node:fs';
import { uniformStream } from '../runtime/init.js';
import { describe, expect, it } from 'vitest';
import { compileSpec } from '../compiler/pipeline.js';
import { renderDiagnostics } from '../grammar/diagnostics.js';
import { diagnosticProblems } from './span-invariants.js';

const FILE = 'nin.model';
const original = readFileSync(new URL('../models/nin.model', import.meta.url), 'utf8');
// More for a longer hunt: MUTANTS=100000 npx vitest run test/mutation.test.ts
const MUTANTS = Number(process.env.MUTANTS ?? 4000);

// A seeded stream (mulberry32, the runtime's init generator), so a failure names a mutant that replays exactly.
const mulberry32 = uniformStream;

interface Piece {
  readonly start: number;
  readonly end: number;
}

/** A rough tokenization (names, numbers, dims, `..`, single symbols) that is independent of the real lexer. */
function pieces(source: string): Piece[] {
  const out: Piece[] = [];
  for (const m of source.matchAll(/[A-Za-z_][A-Za-z0-9_]*|\d+(?:x\d+)+|\d*\.?\d+(?:[eE][+-]?\d+)?|\.\.|\S/gu)) {
    out.push({ start: m.index, end: m.index + m[0].length });
  }
  return out;
}

// Characters worth inserting: the language's own symbols, braces above all, digits, letters, whitespace,
// and characters it does not know (ASCII, look-alikes, an astral emoji, a zero-width space, a lone CR, NUL).
const alphabet = [
  '{', '}', '{', '}', '(', ')', ',', '-', '+', '*', '/', '.', '..', 'x', 'e', '0', '1', '9', 'a', 'Z', '_',
  ' ', '\n', '\t', '#', ';', '"', '\\', '\r', '\0', 'é', 'λ', '∑', '−', '😀', '\u200b', '\ufeff', 'ℹ',
  'model', 'def', 'train', 'input', 'conv', 'relu', 'block', '3x', '1e', '1e-3',
];

type Mutation = (s: string, rand: () => number) => string;

const pick = <T>(xs: readonly T[], rand: () => number): T => xs[Math.floor(rand() * xs.length)];
const at = (s: string, rand: () => number) => Math.floor(rand() * (s.length + 1));

const mutations: Record<string, Mutation> = {
  deleteToken(s, rand) {
    const ps = pieces(s);
    if (ps.length === 0) return s;
    const p = pick(ps, rand);
    return s.slice(0, p.start) + s.slice(p.end);
  },
  duplicateToken(s, rand) {
    const ps = pieces(s);
    if (ps.length === 0) return s;
    const p = pick(ps, rand);
    return s.slice(0, p.end) + s.slice(p.start, p.end) + s.slice(p.end);
  },
  swapAdjacentTokens(s, rand) {
    const ps = pieces(s);
    if (ps.length < 2) return s;
    const i = Math.floor(rand() * (ps.length - 1));
    const [a, b] = [ps[i], ps[i + 1]];
    return s.slice(0, a.start) + s.slice(b.start, b.end) + s.slice(a.end, b.start) + s.slice(a.start, a.end) + s.slice(b.end);
  },
  insertCharacter(s, rand) {
    const i = at(s, rand);
    return s.slice(0, i) + pick(alphabet, rand) + s.slice(i);
  },
  replaceCharacter(s, rand) {
    const i = Math.floor(rand() * s.length);
    return s.slice(0, i) + pick(alphabet, rand) + s.slice(i + 1);
  },
  deleteLine(s, rand) {
    const lines = s.split('\n');
    lines.splice(Math.floor(rand() * lines.length), 1);
    return lines.join('\n');
  },
  truncate(s, rand) {
    return s.slice(0, at(s, rand));
  },
};
const mutationNames = Object.keys(mutations);

/** One to three random edits of the model; returns the mutant and what was done, for the failure message. */
function mutant(seed: number): { source: string; steps: string[] } {
  const rand = mulberry32(seed);
  let source = original;
  const steps: string[] = [];
  const n = 1 + Math.floor(rand() * 3);
  for (let k = 0; k < n; k++) {
    const name = pick(mutationNames, rand);
    steps.push(name);
    source = mutations[name](source, rand);
  }
  return { source, steps };
}

describe('mutations of models/nin.model', () => {
  it('the unmutated model compiles without diagnostics', () => {
    const r = compileSpec(original, FILE);
    expect(r.diagnostics).toEqual([]);
    expect(r.model).toBeDefined();
  });

  it(`${MUTANTS} seeded mutants each give a model or in-file diagnostics, never an exception`, () => {
    const failures: string[] = [];
    const outcomes = { valid: 0, rejected: 0 };
    const codes = new Set<string>();
    for (let seed = 1; seed <= MUTANTS && failures.length < 10; seed++) {
      const { source, steps } = mutant(seed);
      const where = `seed ${seed} (${steps.join(', ')})`;
      try {
        const r = compileSpec(source, FILE);
        const rendered = renderDiagnostics(r.diagnostics, source);
        const problems = diagnosticProblems(source, FILE, r.diagnostics);
        const errors = r.diagnostics.filter((d) => d.severity === 'error');
        if (r.model && errors.length > 0) problems.push('a model and errors at once');
        if (!r.model && errors.length === 0) problems.push('neither a model nor an error');
        if (errors.length > 0 && rendered.split('\n').length < 3 * errors.length) problems.push('a rendered error lacks its source or caret line');
        if (problems.length > 0) failures.push(`${where}: ${problems.join('; ')}`);
        if (r.model) outcomes.valid++;
        else outcomes.rejected++;
        for (const d of r.diagnostics) codes.add(d.code);
      } catch (e) {
        failures.push(`${where}: threw ${(e as Error).stack ?? String(e)}`);
      }
    }
    expect(failures).toEqual([]);
    // The mutants must exercise both outcomes and a fair spread of the diagnostics.
    expect(outcomes.valid).toBeGreaterThan(50);
    expect(outcomes.rejected).toBeGreaterThan(MUTANTS / 2);
    expect(codes.size).toBeGreaterThanOrEqual(10);
  });
});
