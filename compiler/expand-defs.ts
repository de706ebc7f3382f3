// Pass: expand def calls into a flat list of layers, each keeping its span and its chain of call sites.
import type { Call, Def, ModelDecl } from '../grammar/ast.js';
import { error, formatPosition, type Diagnostic, type Note } from '../grammar/diagnostics.js';
import { closest, evaluate, type Env } from './evaluate.js';
import type { CallSite, Layer } from './ir.js';
import { isLayerName, layerSpecs, requiredArgCount } from './layers.js';

export interface Expansion {
  readonly layers: readonly Layer[];
  readonly diagnostics: readonly Diagnostic[];
}

/** `in block(96, 256, …) at nin.model:17:3`: long argument lists are shortened after two. */
export function callSiteNote(site: CallSite): Note {
  const shown = site.args.length > 3 ? [...site.args.slice(0, 2).map(String), '…'] : site.args.map(String);
  return { message: `in ${site.def}(${shown.join(', ')}) at ${formatPosition(site.span)}`, span: site.span };
}

function checkDefs(defs: readonly Def[], out: Diagnostic[]): Map<string, Def> {
  const table = new Map<string, Def>();
  for (const def of defs) {
    const first = table.get(def.name);
    if (first) {
      out.push(error('E013', `duplicate def '${def.name}'`, def.nameSpan, [{ message: `first defined at ${formatPosition(first.nameSpan)}`, span: first.nameSpan }]));
      continue;
    }
    if (isLayerName(def.name)) {
      out.push(error('E017', `def '${def.name}' has the name of a built-in layer`, def.nameSpan));
      continue;
    }
    const seen = new Map<string, Def['params'][number]>();
    for (const p of def.params) {
      const prev = seen.get(p.name);
      if (prev) out.push(error('E014', `duplicate parameter name '${p.name}' in def '${def.name}'`, p.span, [{ message: `first declared at ${formatPosition(prev.span)}`, span: prev.span }]));
      else seen.set(p.name, p);
    }
    table.set(def.name, def);
  }
  return table;
}

/** Reports every cycle of defs calling defs once, at the call that closes it; returns the defs on cycles. */
function checkRecursion(table: ReadonlyMap<string, Def>, out: Diagnostic[]): Set<string> {
  const onCycle = new Set<string>();
  const state = new Map<string, 'active' | 'done'>();
  const stack: string[] = [];
  const visit = (name: string): void => {
    state.set(name, 'active');
    stack.push(name);
    for (const call of table.get(name)?.body ?? []) {
      if (!table.has(call.name)) continue;
      const s = state.get(call.name);
      if (s === 'active') {
        const cycle = [...stack.slice(stack.indexOf(call.name)), call.name];
        cycle.forEach((n) => onCycle.add(n));
        const message = cycle.length === 2 ? `recursive def '${name}' calls itself` : `recursive defs: ${cycle.join(' → ')}`;
        out.push(error('E015', message, call.nameSpan));
      } else if (s === undefined) visit(call.name);
    }
    stack.pop();
    state.set(name, 'done');
  };
  for (const name of table.keys()) if (!state.has(name)) visit(name);
  return onCycle;
}

export function expandDefs(model: ModelDecl): Expansion {
  const diagnostics: Diagnostic[] = [];
  const table = checkDefs(model.defs, diagnostics);
  const recursive = checkRecursion(table, diagnostics);
  const layers: Layer[] = [];

  const expandCall = (call: Call, env: Env, sites: readonly CallSite[]): void => {
    const notes = sites.map(callSiteNote);
    const args: number[] = [];
    for (const a of call.args) {
      const v = evaluate(a, env, notes);
      if (!v.ok) {
        diagnostics.push(v.diagnostic);
        return;
      }
      args.push(v.value);
    }
    const def = table.get(call.name);
    if (def) {
      if (recursive.has(def.name)) return; // already reported
      if (args.length !== def.params.length) {
        diagnostics.push(error('E012', `${def.name} takes ${def.params.length} argument${def.params.length === 1 ? '' : 's'} (${def.params.map((p) => p.name).join(', ')}), got ${args.length}`, call.span, notes));
        return;
      }
      const inner = new Map(def.params.map((p, i) => [p.name, args[i]] as const));
      const site: CallSite = { def: def.name, args, span: call.span };
      for (const c of def.body) expandCall(c, inner, [site, ...sites]);
      return;
    }
    if (!isLayerName(call.name)) {
      const defHint = closest(call.name, [...table.keys()]);
      if (defHint) diagnostics.push(error('E011', `unknown def '${call.name}' (did you mean '${defHint}'?)`, call.nameSpan, notes));
      else {
        const layerHint = closest(call.name, Object.keys(layerSpecs));
        const hint = layerHint ? ` (did you mean '${layerHint}'?)` : ` (layers: ${Object.keys(layerSpecs).join(', ')})`;
        diagnostics.push(error('E010', `unknown layer '${call.name}'${hint}`, call.nameSpan, notes));
      }
      return;
    }
    const spec = layerSpecs[call.name];
    const required = requiredArgCount(spec);
    const max = spec.variadic ? Infinity : spec.args.length;
    if (args.length < required || args.length > max) {
      const expected = spec.variadic ? `at least ${required}` : required === max ? `${required}` : `${required} to ${max}`;
      const names = spec.args.map((a) => a.name).join(', ');
      diagnostics.push(error('E012', `${call.name} takes ${expected} argument${expected === '1' ? '' : 's'}${names ? ` (${names}${spec.variadic ? ', …' : ''})` : ''}, got ${args.length}`, call.span, notes));
      return;
    }
    for (let i = 0; i < args.length; i++) {
      const argSpec = spec.args[Math.min(i, spec.args.length - 1)];
      const span = call.args[i].span;
      if (argSpec.integer && !Number.isInteger(args[i])) {
        diagnostics.push(error('E020', `${call.name} argument ${argSpec.name} must be an integer, got ${args[i]}`, span, notes));
        return;
      }
      const reason = argSpec.check?.(args[i]);
      if (reason) {
        diagnostics.push(error('E022', `${call.name} argument ${argSpec.name} ${reason}, got ${args[i]}`, span, notes));
        return;
      }
    }
    const full = [...args];
    for (let i = args.length; i < spec.args.length; i++) full.push(spec.args[i].default!(full));
    layers.push({ ...spec.build(full), index: layers.length + 1, span: call.span, callSites: sites });
  };

  for (const call of model.body) expandCall(call, new Map(), []);
  return { layers, diagnostics };
}
