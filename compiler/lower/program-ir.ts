// The program IR between the layer IR and plan.json: buffers, kernel steps and programs, as plain data.
import type { ShapedLayer } from '../ir.js';
import type { OpConsts, OpKind } from './ops.js';

export type Space = 'act' | 'fixed' | 'param' | 'grad' | 'momentum' | 'state';
export type { Dtype } from './ops.js';
import type { Dtype } from './ops.js';

/** A tensor the programs read or write. `act` sizes are per image (the runtime scales by N). */
export interface BufferDecl {
  readonly id: string;
  readonly space: Space;
  readonly size: number;
  readonly dtype: Dtype;
  readonly offset?: number; // fixed for param/grad/momentum/state; set by planMemory for act/fixed
  /** Last-block tickets (fixed space): a kernel cut short can leave them nonzero, so plan.json lists them in `tickets` for the runtime to zero after a failed run. */
  readonly tickets?: true;
}

export type { OpKind, OpConsts } from './ops.js';

/** One kernel call of a program, of op K: its buffers by the names of the op's contract (compiler/lower/ops.ts). */
export interface StepOf<K extends OpKind> {
  readonly kernel: string; // exported symbol, e.g. k1_conv_fwd
  readonly op: K;
  readonly layer: number; // Torch module index; 0 for whole-model steps (sgd)
  readonly source: string; // file:line:col of the spec layer
  readonly comment: string; // the spec layer as written, with its call sites
  readonly buffers: Readonly<Record<string, string>>; // contract name (x, w, y, …) → buffer id
  readonly args: readonly string[]; // the same buffer ids in the contract's order: plan.json's ABI with the runtime
  readonly scalars: readonly string[];
  readonly consts: OpConsts[K]; // shapes and options baked into the kernel
}

/** A kernel step of any op: `switch (step.op)` narrows its consts to that op's. */
export type KernelStep = { [K in OpKind]: StepOf<K> }[OpKind];

/** Where the buffer `name` (an ops.ts name) is among the step's args, or −1: the builder keeps `buffers` in the contract's order. */
export const argIndex = (step: KernelStep, name: string): number => Object.keys(step.buffers).indexOf(name);

export interface Program {
  readonly name: string;
  readonly inputs: Readonly<Record<string, string>>; // role → buffer id
  readonly outputs: Readonly<Record<string, string>>;
  readonly steps: readonly KernelStep[];
  // Runs once after the weights change (prepare_infer's BN folding), not call after call: plan.json says
  // `oneShot`, and the devices keep nothing warm for it (no held pool workers, no CUDA graph).
  readonly oneShot?: true;
}

export interface TensorEntry {
  readonly name: string; // e.g. conv1.weight, bn2.running_var
  readonly buffer: string; // buffer id
  readonly shape: readonly number[];
  readonly init: { readonly kind: 'uniform'; readonly bound: number } | { readonly kind: 'uniform01' | 'zeros' | 'ones' };
  readonly torch: { readonly index: number; readonly field: string };
  readonly layer: number;
}

export interface LoweredModel {
  readonly params: readonly TensorEntry[];
  readonly state: readonly TensorEntry[];
  readonly buffers: readonly BufferDecl[];
  readonly programs: readonly Program[];
}

export function layerComment(l: ShapedLayer, text: string): string {
  const sites = l.callSites.map((s) => ` in ${s.def}(${s.args.join(', ')}) at line ${s.span.start.line}`).join(',');
  return `layer ${l.index}: ${text} at ${l.span.file.split('/').pop()}:${l.span.start.line}:${l.span.start.column}${sites}`;
}

export function layerSource(l: ShapedLayer): string {
  return `${l.span.file.split('/').pop()}:${l.span.start.line}:${l.span.start.column}`;
}
