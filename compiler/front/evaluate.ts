// Evaluates the arithmetic in call arguments (`nop*2`, `(a+1)/2`) under a def's parameter bindings.
import type { Expr } from '../../grammar/ast.js';
import { error, type Diagnostic, type Note } from '../../grammar/diagnostics.js';

export type Env = ReadonlyMap<string, number>;

export type Evaluated = { readonly ok: true; readonly value: number } | { readonly ok: false; readonly diagnostic: Diagnostic };

export function evaluate(e: Expr, env: Env, notes: readonly Note[]): Evaluated {
  switch (e.kind) {
    case 'number':
      return { ok: true, value: e.value };
    case 'name': {
      const v = env.get(e.name);
      if (v === undefined) {
        const known = [...env.keys()];
        const near = closest(e.name, known);
        const hint = near ? ` (did you mean '${near}'?)` : known.length > 0 ? ` (parameters in scope: ${known.join(', ')})` : ' (outside a def there are no names: only def parameters can be used)';
        return { ok: false, diagnostic: error('E016', `unknown name '${e.name}'${hint}`, e.span, notes) };
      }
      return { ok: true, value: v };
    }
    case 'neg': {
      const v = evaluate(e.operand, env, notes);
      return v.ok ? { ok: true, value: -v.value } : v;
    }
    case 'binary': {
      const l = evaluate(e.left, env, notes);
      if (!l.ok) return l;
      const r = evaluate(e.right, env, notes);
      if (!r.ok) return r;
      switch (e.op) {
        case '+':
          return { ok: true, value: l.value + r.value };
        case '-':
          return { ok: true, value: l.value - r.value };
        case '*':
          return { ok: true, value: l.value * r.value };
        case '/':
          if (r.value === 0) return { ok: false, diagnostic: error('E021', 'division by zero', e.right.span, notes) };
          return { ok: true, value: l.value / r.value };
      }
    }
  }
}

/** Levenshtein distance, for "did you mean" hints. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length];
}

export function closest(name: string, candidates: readonly string[]): string | undefined {
  // `batchsize` means `batch` and `max` means `maxpool`, though other words are fewer edits away.
  const lower = name.toLowerCase();
  const prefix = candidates.find((c) => Math.min(c.length, name.length) >= 3 && (lower.startsWith(c.toLowerCase()) || c.toLowerCase().startsWith(lower)));
  if (prefix) return prefix;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(name.length / 3)) ? best : undefined;
}
