// The program IR between the layer IR and plan.json: buffers, kernel steps and programs, as plain data.
import type { ShapedLayer } from '../ir.js';

export type Space = 'act' | 'fixed' | 'param' | 'grad' | 'momentum' | 'state';
export type Dtype = 'f32' | 'i32';

/** A tensor the programs read or write. `act` sizes are per image (the runtime scales by N). */
export interface BufferDecl {
  readonly id: string;
  readonly space: Space;
  readonly size: number;
  readonly dtype: Dtype;
  readonly offset?: number; // fixed for param/grad/momentum/state; set by planMemory for act/fixed
}

/** What a kernel computes; the codegen turns each into a call of the kernel library. */
export type OpKind =
  | 'conv_fwd' | 'conv_bwd_data' | 'conv_bwd_weight' | 'conv_infer' | 'fold_bn'
  | 'bn_fwd_train' | 'bn_bwd' | 'bn_eval'
  | 'relu_fwd' | 'relu_bwd'
  | 'maxpool_fwd' | 'maxpool_fwd_infer' | 'maxpool_bwd' | 'avgpool_fwd' | 'avgpool_bwd'
  | 'linear_fwd' | 'linear_infer' | 'linear_bwd_data' | 'linear_bwd_weight'
  | 'logsoftmax_fwd' | 'logsoftmax_bwd' | 'softmax_fwd' | 'softmax_bwd'
  | 'dropout_fwd' | 'dropout_bwd' | 'nll_loss' | 'sgd_update'
  // the fused training program of the cuda/emu target (compiler/lower/train-fused.ts)
  | 'conv_fwd_fused' | 'conv_dgrad_fused' | 'conv_wgrad_fused' | 'wgrad_reduce'
  | 'bn_stats' | 'bn_finalize' | 'bn_bwd_finalize' | 'act_apply' | 'act_bwd_stats' | 'grad_rebuild'
  | 'maxpool_fwd_fused' | 'avgpool_fwd_fused' | 'maxpool_bwd_fused' | 'avgpool_bwd_fused';

export interface KernelStep {
  readonly kernel: string; // exported symbol, e.g. k1_conv_fwd
  readonly op: OpKind;
  readonly layer: number; // Torch module index; 0 for whole-model steps (sgd)
  readonly source: string; // file:line:col of the spec layer
  readonly comment: string; // the spec layer as written, with its call sites
  readonly args: readonly string[]; // buffer ids, in the kernel's argument order
  readonly scalars: readonly string[];
  readonly consts: Readonly<Record<string, number | boolean>>; // shapes and options baked into the kernel
}

export interface Program {
  readonly name: string;
  readonly inputs: Readonly<Record<string, string>>; // role → buffer id
  readonly outputs: Readonly<Record<string, string>>;
  readonly steps: readonly KernelStep[];
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
