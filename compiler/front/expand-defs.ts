// Pass: expand def calls into a flat list of layers, each keeping its span and its chain of call sites.
import type { Call, Def, ModelDecl } from '../../grammar/ast.js';
import { error, formatPosition, type Diagnostic, type Note } from '../../grammar/diagnostics.js';
import { closest, evaluate, type Env } from './evaluate.js';
import type { CallSite, Layer } from '../ir.js';
import { isLayerName, layerSpecs, maxSize, requiredArgCount } from './layers.js';

// Bounds that keep a runaway spec from exhausting the stack or the memory: a chain of defs deeper than
// any real network, or defs that call each other many times over (2^k calls from k nested pairs).
const maxDefDepth = 64;
const maxExpandedCalls = 100_000;

export interface Expansion {
  readonly layers: readonly Layer[];
  readonly diagnostics: readonly Diagnostic[];
  /** Layer indices (0-based) before which a call failed and gave no layer. */
  readonly gaps: ReadonlySet<number>;
}

/** `in block(96, 256, …) at nin.model:17:3`: long argument lists are shortened after two. */
export function callSiteNote(site: CallSite): Note {
  const shown = site.args.length > 3 ? [...site.args.slice(0, 2).map(String), '…'] : site.args.map(String);
  return { message: `in ${site.def}(${shown.join(', ')}) at ${formatPosition(site.span)}`, span: site.span };
}

function checkDefs(defs: readonly Def[], out: Diagnostic[], shadowing: Set<string>): Map<string, Def> {
  const table = new Map<string, Def>();
  for (const def of defs) {
    const first = table.get(def.name);
    if (first) {
      out.push(error('E013', `duplicate def '${def.name}'`, def.nameSpan, [{ message: `first defined at ${formatPosition(first.nameSpan)}`, span: first.nameSpan }]));
      continue;
    }
    if (isLayerName(def.name)) {
      out.push(error('E017', `def '${def.name}' has the name of a built-in layer (rename the def)`, def.nameSpan));
      shadowing.add(def.name);
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
  const calls: Call[] = []; // calls[i] is how stack[i] called stack[i + 1]
  const visit = (name: string): void => {
    if (stack.length >= maxDefDepth) return; // not visited here: the outer loop starts again from it; expansion reports the depth
    state.set(name, 'active');
    stack.push(name);
    for (const call of table.get(name)?.body ?? []) {
      if (!table.has(call.name)) continue;
      const s = state.get(call.name);
      if (s === 'active') {
        const first = stack.indexOf(call.name);
        const cycle = [...stack.slice(first), call.name];
        cycle.forEach((n) => onCycle.add(n));
        const message = cycle.length === 2 ? `recursive def '${name}' calls itself` : `recursive defs: ${cycle.join(' → ')}`;
        // The other calls of the cycle, so that each link can be found.
        const notes = calls.slice(first).map((c, i) => ({ message: `${stack[first + i]} calls ${c.name} at ${formatPosition(c.nameSpan)}`, span: c.nameSpan }));
        out.push(error('E015', message, call.nameSpan, notes));
      } else if (s === undefined) {
        calls.push(call);
        visit(call.name);
        calls.pop();
      }
    }
    stack.pop();
    state.set(name, 'done');
  };
  for (const name of table.keys()) if (!state.has(name)) visit(name);
  return onCycle;
}

/** Layers whose output shape is their input's, whatever their arguments. */
const keepsShape = new Set(['relu', 'dropout', 'bn', 'logsoftmax', 'softmax']);

export function expandDefs(model: ModelDecl): Expansion {
  const diagnostics: Diagnostic[] = [];
  const shadowing = new Set<string>(); // layer names a rejected def took: calls to them meant the def
  const table = checkDefs(model.defs, diagnostics, shadowing);
  const recursive = checkRecursion(table, diagnostics);
  const layers: Layer[] = [];
  let calls = 0;

  // Where a call gave no layer (an error): shape inference treats the shape there as unknown, so the
  // model's other errors are still found in the same run without echoing this one.
  const gaps = new Set<number>();
  const fail = (d?: Diagnostic): void => {
    if (d) diagnostics.push(d);
    gaps.add(layers.length);
  };
  const expandCall = (call: Call, env: Env, sites: readonly CallSite[]): void => {
    if (calls++ > maxExpandedCalls) return; // reported once, below
    const notes = () => sites.map(callSiteNote); // built only for a diagnostic: most calls have none
    const args: number[] = [];
    for (const a of call.args) {
      const v = evaluate(a, env, []);
      if (!v.ok) {
        fail({ ...v.diagnostic, notes: notes() });
        return;
      }
      args.push(v.value);
    }
    const def = table.get(call.name);
    if (def) {
      if (recursive.has(def.name)) return fail(); // already reported
      if (args.length !== def.params.length) {
        fail(error('E012', `${def.name} takes ${def.params.length} argument${def.params.length === 1 ? '' : 's'} (${def.params.map((p) => p.name).join(', ')}), got ${args.length}`, call.span, notes()));
        return;
      }
      if (sites.length >= maxDefDepth) {
        const shown = [...notes().slice(0, 2), { message: `… ${sites.length - 2} more` }];
        fail(error('E015', `defs nested more than ${maxDefDepth} calls deep`, call.nameSpan, shown));
        return;
      }
      const inner = new Map(def.params.map((p, i) => [p.name, args[i]] as const));
      const site: CallSite = { def: def.name, args, span: call.span };
      for (const c of def.body) expandCall(c, inner, [site, ...sites]);
      return;
    }
    if (!isLayerName(call.name)) {
      const defHint = closest(call.name, [...table.keys()]);
      if (defHint) fail(error('E011', `unknown def '${call.name}' (did you mean '${defHint}'?)`, call.nameSpan, notes()));
      else {
        const layerHint = closest(call.name, Object.keys(layerSpecs));
        const hint = layerHint ? ` (did you mean '${layerHint}'?)` : ` (layers: ${Object.keys(layerSpecs).join(', ')})`;
        fail(error('E010', `unknown layer '${call.name}'${hint}`, call.nameSpan, notes()));
      }
      return;
    }
    if (shadowing.has(call.name)) return fail(); // already reported (E017)
    // A bad call of a layer that passes its input on unchanged leaves no gap: the shape after it is known.
    const failLayer = (d: Diagnostic): void => {
      if (keepsShape.has(call.name)) diagnostics.push(d);
      else fail(d);
    };
    const spec = layerSpecs[call.name];
    const required = requiredArgCount(spec);
    const max = spec.variadic ? Infinity : spec.args.length;
    if (args.length < required || args.length > max) {
      const expected = spec.variadic ? `at least ${required}` : max === 0 ? 'no' : required === max ? `${required}` : `${required} to ${max}`;
      const names = spec.args.map((a) => a.name).join(', ');
      failLayer(error('E012', `${call.name} takes ${expected} argument${expected === '1' || expected === 'at least 1' ? '' : 's'}${names ? ` (${names}${spec.variadic ? ', …' : ''})` : ''}, got ${args.length}`, call.span, notes()));
      return;
    }
    for (let i = 0; i < args.length; i++) {
      const argSpec = spec.args[Math.min(i, spec.args.length - 1)];
      const span = call.args[i].span;
      if (argSpec.integer && !Number.isInteger(args[i])) {
        failLayer(error('E020', `${call.name} argument ${argSpec.name} must be an integer, got ${args[i]}`, span, notes()));
        return;
      }
      if (argSpec.integer && Math.abs(args[i]) > maxSize) {
        failLayer(error('E022', `${call.name} argument ${argSpec.name} is too large, got ${args[i]} (at most ${maxSize})`, span, notes()));
        return;
      }
      const reason = argSpec.check?.(args[i]);
      if (reason) {
        failLayer(error('E022', `${call.name} argument ${argSpec.name} ${reason}, got ${args[i]}`, span, notes()));
        return;
      }
    }
    const full = [...args];
    for (let i = args.length; i < spec.args.length; i++) full.push(spec.args[i].default!(full));
    layers.push({ ...spec.build(full), index: layers.length + 1, span: call.span, callSites: sites });
  };

  for (const call of model.body) expandCall(call, new Map(), []);
  if (calls > maxExpandedCalls) {
    diagnostics.push(error('E015', `the defs expand to more than ${maxExpandedCalls} calls: some def calls others too many times over`, model.nameSpan));
  }
  return { layers, diagnostics: distinct(diagnostics), gaps };
}

/**
 * A mistake in a def is met once per call of it; the same code, place and message is reported once,
 * with the first call site (different argument values give different messages and are all kept).
 */
function distinct(ds: readonly Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return ds.filter((d) => {
    const key = `${d.code} ${d.span.start.offset} ${d.span.end.offset} ${d.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
