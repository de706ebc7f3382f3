// Pass: expand def calls into the network's layers and blocks, each keeping its span and its chain of call sites.
import type { Block, Call, Def, Item, ModelDecl } from '../../grammar/ast.js';
import { error, formatPosition, type Diagnostic, type Note } from '../../grammar/diagnostics.js';
import { closest, evaluate, type Env } from './evaluate.js';
import { blockKinds, isBlockKind, type Branch, type CallSite, type NetNode } from '../ir.js';
import { isLayerName, keepsShape, layerSpecs, maxSize, requiredArgCount } from './layers.js';

// Bounds that keep a runaway spec from exhausting the stack or the memory: a chain of defs deeper than
// any real network, or defs that call each other many times over (2^k calls from k nested pairs).
const maxDefDepth = 64;
const maxExpandedCalls = 100_000;

/** For each node list (the model's, a branch's): the positions (0-based) before which a call failed and gave no node. */
export type Gaps = ReadonlyMap<readonly NetNode[], ReadonlySet<number>>;

export interface Expansion {
  readonly nodes: readonly NetNode[];
  readonly diagnostics: readonly Diagnostic[];
  readonly gaps: Gaps;
}

/** Every call written in some items, blocks opened: what a def calls. */
function callsIn(items: readonly Item[]): Call[] {
  return items.flatMap((i) => (i.kind === 'call' ? [i] : callsIn(i.items)));
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
    for (const call of callsIn(table.get(name)?.body ?? [])) {
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

/** A node list being filled: the model's or a branch's, with its gaps and the next Torch module index. */
interface Sink {
  readonly nodes: NetNode[];
  readonly gaps: Set<number>;
  next: number;
}

export function expandDefs(model: ModelDecl): Expansion {
  const diagnostics: Diagnostic[] = [];
  const shadowing = new Set<string>(); // layer names a rejected def took: calls to them meant the def
  const table = checkDefs(model.defs, diagnostics, shadowing);
  const recursive = checkRecursion(table, diagnostics);
  const gaps = new Map<readonly NetNode[], ReadonlySet<number>>();
  const newSink = (): Sink => {
    const sink: Sink = { nodes: [], gaps: new Set(), next: 1 };
    gaps.set(sink.nodes, sink.gaps);
    return sink;
  };
  let calls = 0;

  // Where a call gave no node (an error): shape inference treats the shape there as unknown, so the
  // model's other errors are still found in the same run without echoing this one.
  const fail = (sink: Sink, d?: Diagnostic): void => {
    if (d) diagnostics.push(d);
    sink.gaps.add(sink.nodes.length);
  };
  const expandItems = (items: readonly Item[], env: Env, sites: readonly CallSite[], sink: Sink): void => {
    for (const item of items) {
      if (item.kind === 'call') expandCall(item, env, sites, sink);
      else expandBlock(item, env, sites, sink);
    }
  };
  const expandBlock = (block: Block, env: Env, sites: readonly CallSite[], sink: Sink): void => {
    const notes = () => sites.map(callSiteNote);
    if (!isBlockKind(block.name)) {
      if (block.name === 'branch') return fail(sink, error('E051', `'branch' belongs directly inside ${blockKinds.join(', ')}`, block.nameSpan, notes()));
      const hint = closest(block.name, [...blockKinds, 'branch']);
      return fail(sink, error('E051', `unknown block '${block.name}'${hint ? ` (did you mean '${hint}'?)` : ''}: blocks are ${blockKinds.join(', ')}, each holding branch { … }`, block.nameSpan, notes()));
    }
    const branches: Branch<NetNode>[] = [];
    let broken = false;
    for (const item of block.items) {
      if (item.kind !== 'block' || item.name !== 'branch') {
        diagnostics.push(error('E051', `${block.name} holds branch { … } items only, got ${item.kind === 'call' ? `the call '${item.name}'` : `'${item.name} { … }'`}`, item.nameSpan, notes()));
        broken = true;
        continue;
      }
      if (item.items.length === 0) {
        diagnostics.push(error('E051', `empty branch (write 'branch { identity }' for a path that passes the input on)`, item.nameSpan, notes()));
        broken = true;
        continue;
      }
      const inner = newSink();
      expandItems(item.items, env, sites, inner);
      branches.push({ span: item.nameSpan, nodes: inner.nodes });
    }
    if (!broken && branches.length < 2) {
      diagnostics.push(error('E051', `${block.name} needs at least two branches, got ${branches.length}`, block.nameSpan, notes()));
      broken = true;
    }
    if (broken) return fail(sink);
    sink.nodes.push({ kind: block.name, branches, index: sink.next, span: block.nameSpan, callSites: sites });
    // A residual block is two Torch modules in its Sequential: nn.ConcatTable and the nn.CAddTable after it.
    sink.next += block.name === 'residual' ? 2 : 1;
  };
  const expandCall = (call: Call, env: Env, sites: readonly CallSite[], sink: Sink): void => {
    if (calls++ > maxExpandedCalls) return; // reported once, below
    const notes = () => sites.map(callSiteNote); // built only for a diagnostic: most calls have none
    const args: number[] = [];
    for (const a of call.args) {
      const v = evaluate(a, env, []);
      if (!v.ok) {
        fail(sink, { ...v.diagnostic, notes: notes() });
        return;
      }
      args.push(v.value);
    }
    const def = table.get(call.name);
    if (def) {
      if (recursive.has(def.name)) return fail(sink); // already reported
      if (call.methods.length > 0) {
        return fail(sink, error('E052', `':${call.methods[0].name}()' applies to a layer, and '${def.name}' is a def`, call.methods[0].span, notes()));
      }
      if (args.length !== def.params.length) {
        fail(sink, error('E012', `${def.name} takes ${def.params.length} argument${def.params.length === 1 ? '' : 's'} (${def.params.map((p) => p.name).join(', ')}), got ${args.length}`, call.span, notes()));
        return;
      }
      if (sites.length >= maxDefDepth) {
        const shown = [...notes().slice(0, 2), { message: `… ${sites.length - 2} more` }];
        fail(sink, error('E015', `defs nested more than ${maxDefDepth} calls deep`, call.nameSpan, shown));
        return;
      }
      const inner = new Map(def.params.map((p, i) => [p.name, args[i]] as const));
      const site: CallSite = { def: def.name, args, span: call.span };
      expandItems(def.body, inner, [site, ...sites], sink);
      return;
    }
    if (!isLayerName(call.name)) {
      const defHint = closest(call.name, [...table.keys()]);
      if (defHint) fail(sink, error('E011', `unknown def '${call.name}' (did you mean '${defHint}'?)`, call.nameSpan, notes()));
      else {
        const layerHint = closest(call.name, Object.keys(layerSpecs));
        const hint = layerHint ? ` (did you mean '${layerHint}'?)` : ` (layers: ${Object.keys(layerSpecs).join(', ')})`;
        fail(sink, error('E010', `unknown layer '${call.name}'${hint}`, call.nameSpan, notes()));
      }
      return;
    }
    if (shadowing.has(call.name)) return fail(sink); // already reported (E017)
    // A bad call of a layer that passes its input on unchanged leaves no gap: the shape after it is known.
    const failLayer = (d: Diagnostic): void => {
      if (keepsShape.has(call.name)) diagnostics.push(d);
      else fail(sink, d);
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
    let op = spec.build(full);
    for (const m of call.methods) {
      const apply = spec.methods?.[m.name];
      if (!apply) {
        const known = Object.keys(spec.methods ?? {});
        const hint = closest(m.name, known);
        const offer = known.length === 0 ? `${call.name} takes no methods` : hint ? `did you mean ':${hint}()'?` : `${call.name} takes ${known.map((k) => `:${k}()`).join(', ')}`;
        failLayer(error('E052', `unknown method ':${m.name}()' for ${call.name} (${spec.torch}): ${offer}`, m.span, notes()));
        return;
      }
      op = apply(op);
    }
    sink.nodes.push({ ...op, index: sink.next++, span: call.span, callSites: sites });
  };

  const top = newSink();
  expandItems(model.body, new Map(), [], top);
  if (calls > maxExpandedCalls) {
    diagnostics.push(error('E015', `the defs expand to more than ${maxExpandedCalls} calls: some def calls others too many times over`, model.nameSpan));
  }
  return { nodes: top.nodes, diagnostics: distinct(diagnostics), gaps };
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
