// Evaluates the arithmetic in call arguments (`nop*2`, `(a+1)/2`) under a def's parameter bindings.
import type { Expr } from '../../grammar/ast.js';
import { error, type Diagnostic, type Note } from '../../grammar/diagnostics.js';
import { closest } from '../../grammar/near-miss.js';

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

// The hints' word distance lives with the grammar's, so every "did you mean" agrees (a swap is one edit: cnov → conv).
export { closest };
