// Pass verify-program: every kernel step of the lowered programs checked against its op's contract
// (compiler/lower/ops.ts): a known op, its consts' names and types, its buffers named, ordered, declared,
// of the right dtype and size, and written or read as the program's inputs and outputs allow.
import { constSchema, isOpKind, opBuffers, opScalars, type BufferContract } from './ops.js';
import type { BufferDecl, KernelStep, Program } from './program-ir.js';

const list = (names: readonly string[]) => names.join(', ') || 'none';

/** Problems with the step's consts against its op's schema; empty when they can be trusted. */
function constProblems(step: KernelStep): string[] {
  const schema = constSchema(step.op);
  const consts: Readonly<Record<string, unknown>> = step.consts;
  const problems: string[] = [];
  for (const [key, type] of Object.entries(schema)) {
    const v = consts[key];
    if (v === undefined) {
      if (!type.endsWith('?')) problems.push(`missing const '${key}' (${type})`);
    } else if (type === 'nums?' ? !Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isFinite(x)) : type.startsWith('int') ? !Number.isInteger(v) || Number(v) < 0 : type === 'num' ? typeof v !== 'number' || !Number.isFinite(v) : typeof v !== 'boolean') {
      problems.push(`const '${key}' is ${JSON.stringify(v)}, not ${type === 'nums?' ? 'a list of finite numbers' : type.startsWith('int') ? 'a non-negative integer' : type === 'num' ? 'a finite number' : 'a boolean'}`);
    }
  }
  const unknown = Object.keys(consts).filter((key) => !Object.hasOwn(schema, key));
  if (unknown.length > 0) problems.push(`unknown consts: ${list(unknown)}`);
  return problems;
}

/** Problems with one buffer of a step against its contract entry. */
function bufferProblems(step: KernelStep, rule: BufferContract, decls: ReadonlyMap<string, BufferDecl>): string[] {
  const id = step.buffers[rule.name];
  const decl = decls.get(id);
  if (!decl) return [`buffer '${rule.name}' is ${id}, which no program declares`];
  const problems: string[] = [];
  if (decl.dtype !== rule.dtype) problems.push(`buffer '${rule.name}' (${id}) is ${decl.dtype}, the op takes ${rule.dtype}`);
  const sizeOk = rule.atLeast ? decl.size >= rule.size : decl.size === rule.size;
  if (!sizeOk) problems.push(`buffer '${rule.name}' (${id}) has ${decl.size} elements, the op's consts need ${rule.atLeast ? 'at least ' : ''}${rule.size}`);
  return problems;
}

/** Problems with one step; the message names the step's kernel, op, program and spec source. */
function stepProblems(program: Program, step: KernelStep, decls: ReadonlyMap<string, BufferDecl>): string[] {
  const where = `${step.kernel} (${step.op}) of ${program.name}${step.source ? ` from ${step.source}` : ''}`;
  const at = (problems: readonly string[]) => problems.map((p) => `${where}: ${p}`);
  if (!isOpKind(step.op)) return at([`unknown op '${step.op}'`]);
  const consts = constProblems(step);
  if (consts.length > 0) return at(consts); // the buffer rules read the consts
  const contract = opBuffers(step.op, step.consts);
  const names = contract.map((b) => b.name);
  const given = Object.keys(step.buffers);
  if (given.join() !== names.join()) {
    return at([`buffers (${list(given)}) are not the op's (${list(names)}) for these consts`]);
  }
  const problems: string[] = [];
  const order = names.map((name) => step.buffers[name]);
  if (step.args.join() !== order.join()) problems.push(`args (${list(step.args)}) are not its buffers in the op's order (${list(order)})`);
  const scalars = opScalars(step.op);
  if (step.scalars.join() !== scalars.join()) problems.push(`scalars (${list(step.scalars)}) are not the op's (${list(scalars)})`);
  for (const rule of contract) problems.push(...bufferProblems(step, rule, decls));
  return at(problems);
}

/** Problems of direction: a program input a step writes, an activation read before anything wrote it, an output nothing wrote. */
function dataflowProblems(program: Program, decls: ReadonlyMap<string, BufferDecl>): string[] {
  const inputs = new Set(Object.values(program.inputs));
  const written = new Set(inputs);
  const problems: string[] = [];
  for (const step of program.steps) {
    if (!isOpKind(step.op)) continue;
    const where = `${step.kernel} (${step.op}) of ${program.name}${step.source ? ` from ${step.source}` : ''}`;
    const contract = opBuffers(step.op, step.consts);
    for (const rule of contract) {
      const id = step.buffers[rule.name];
      if (rule.dir !== 'out' && decls.get(id)?.space === 'act' && !written.has(id)) {
        problems.push(`${where}: reads activation '${rule.name}' (${id}) before any step of the program wrote it`);
      }
    }
    for (const rule of contract) {
      const id = step.buffers[rule.name];
      if (rule.dir === 'in') continue;
      if (inputs.has(id)) problems.push(`${where}: writes '${rule.name}' (${id}), an input of the program`);
      written.add(id);
    }
  }
  for (const [role, id] of Object.entries(program.outputs)) {
    if (!written.has(id)) problems.push(`${program.name}: its output ${role} (${id}) is written by no step`);
  }
  return problems;
}

/** Problems, empty when every step of every program keeps its op's contract (ops.ts). */
export function verifyPrograms(programs: readonly Program[], buffers: readonly BufferDecl[]): string[] {
  const decls = new Map(buffers.map((b) => [b.id, b]));
  const problems = programs.flatMap((p) => p.steps.flatMap((s) => stepProblems(p, s, decls)));
  // Direction is checked once each step is known to keep its contract (its buffers are then the op's).
  return problems.length > 0 ? problems : programs.flatMap((p) => dataflowProblems(p, decls));
}
