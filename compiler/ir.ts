// The layer IR: the network as written (nested residual/concat blocks) and the flat, readonly chain of
// Torch-style layers the back end lowers, with their source spans and shapes.
import type { Span } from '../grammar/diagnostics.js';

/** The layers of the language; the back end lowers them all (front/lowerable.ts says on which devices). */
export type LayerKind =
  | 'conv' | 'bn' | 'relu' | 'maxpool' | 'avgpool' | 'view' | 'linear' | 'logsoftmax' | 'softmax' | 'dropout'
  | 'lrn' | 'threshold' | 'tanh' | 'sigmoid' | 'identity' | 'zeropad';
export type NetLayerKind = LayerKind;

export interface ConvAttrs { readonly nIn: number; readonly nOut: number; readonly kW: number; readonly kH: number; readonly dW: number; readonly dH: number; readonly padW: number; readonly padH: number; readonly bias: boolean }
export interface BatchNormAttrs { readonly nFeatures: number; readonly eps: number; readonly momentum: number; readonly affine: boolean }
/** `ceil`: Torch's `:ceil()` output-size rule, written only when set. */
export interface PoolAttrs { readonly kW: number; readonly kH: number; readonly dW: number; readonly dH: number; readonly padW: number; readonly padH: number; readonly ceil?: true }
export interface ViewAttrs { readonly sizes: readonly number[] }
export interface LinearAttrs { readonly nIn: number; readonly nOut: number; readonly bias: boolean }
export interface DropoutAttrs { readonly p: number }
export interface LrnAttrs { readonly size: number; readonly alpha: number; readonly beta: number; readonly k: number }
export interface ThresholdAttrs { readonly th: number; readonly v: number }
/** Zero border per side (negative: crop), Torch's pad_l, pad_r, pad_t, pad_b. */
export interface ZeroPadAttrs { readonly l: number; readonly r: number; readonly t: number; readonly b: number }

export type LayerOp =
  | { readonly kind: 'conv'; readonly attrs: ConvAttrs }
  | { readonly kind: 'bn'; readonly attrs: BatchNormAttrs }
  | { readonly kind: 'maxpool'; readonly attrs: PoolAttrs }
  | { readonly kind: 'avgpool'; readonly attrs: PoolAttrs }
  | { readonly kind: 'view'; readonly attrs: ViewAttrs }
  | { readonly kind: 'linear'; readonly attrs: LinearAttrs }
  | { readonly kind: 'dropout'; readonly attrs: DropoutAttrs }
  | { readonly kind: 'lrn'; readonly attrs: LrnAttrs }
  | { readonly kind: 'threshold'; readonly attrs: ThresholdAttrs }
  | { readonly kind: 'zeropad'; readonly attrs: ZeroPadAttrs }
  | { readonly kind: 'relu' | 'logsoftmax' | 'softmax' | 'tanh' | 'sigmoid' | 'identity'; readonly attrs: Record<string, never> };

export type NetLayerOp = LayerOp;

/**
 * The merge that closes a block once lowering has opened it (front/lowerable.ts): `add` sums its inputs
 * (nn.CAddTable), `concat` joins them along channels (nn.Concat(2)). Only the lowered chain holds them.
 */
export type MergeKind = 'add' | 'concat';
export type MergeOp = { readonly kind: MergeKind; readonly attrs: Record<string, never> };

/** Where a layer came from when it was written inside a def: the call that expanded it. */
export interface CallSite {
  readonly def: string;
  readonly args: readonly number[];
  readonly span: Span;
}

/** A layer after def expansion. `index` is Torch's 1-based module index in nn.Sequential. */
export type Layer = LayerOp & {
  readonly index: number;
  readonly span: Span;
  readonly callSites: readonly CallSite[]; // innermost first
};

/** [C, H, W] for images, [F] for flat features. Always per image (no batch). */
export type Shape = readonly number[];

/** Where a node sits: `index` is Torch's 1-based module index in its nn.Sequential (the model or a branch). */
interface Placed {
  readonly index: number;
  readonly span: Span;
  readonly callSites: readonly CallSite[]; // innermost first
}

export type NetLayer = NetLayerOp & Placed;

/**
 * Branches fed the same input and merged: `residual` sums them (nn.ConcatTable + nn.CAddTable), `concat`
 * joins them along channels (nn.Concat(2)), `depthconcat` too, centring smaller maps in the largest (nn.DepthConcat(2)).
 */
export const blockKinds = ['residual', 'concat', 'depthconcat'] as const;
export type BlockKind = (typeof blockKinds)[number];

export interface Branch<N> {
  readonly span: Span; // the `branch { … }` as written
  readonly nodes: readonly N[];
}

export interface Block<N> extends Placed {
  readonly kind: BlockKind;
  readonly branches: readonly Branch<N>[];
}

/** The network as written, after def expansion: layers and blocks whose branches hold more of them. */
export type NetNode = NetLayer | Block<NetNode>;

interface Shaped {
  readonly input: Shape;
  readonly output: Shape;
  readonly params: number; // learnable parameters (a block: its branches' sum)
  readonly macs: number; // multiply-accumulates for one image (conv and linear; a block: its branches' sum)
}

export type ShapedNetLayer = NetLayer & Shaped;
export type ShapedBlock = Block<ShapedNetNode> & Shaped;
export type ShapedNetNode = ShapedNetLayer | ShapedBlock;

export const isBlockKind = (name: string): name is BlockKind => (blockKinds as readonly string[]).includes(name);
export const isBlock = <N extends { readonly kind: string }>(n: N): n is Extract<N, { readonly kind: BlockKind }> => isBlockKind(n.kind);

/** Every layer of a network, branches opened, in Torch's order (a block's branches one after another). */
export function netLayers(nodes: readonly ShapedNetNode[]): ShapedNetLayer[] {
  return nodes.flatMap((n) => (isBlock(n) ? n.branches.flatMap((b) => netLayers(b.nodes)) : [n]));
}

/**
 * A layer of the chain lowering takes. `from`: where its inputs come from, as positions in the chain's `layers`
 * (−1: the model's input), when it is not simply the layer before it (the model's input for the first): a
 * branch's first layer reads its block's input, a merge the last layer of each branch. A chain model has none.
 * `index` is the layer's 1-based position in the chain: Torch's module index when the model is a plain chain.
 */
export type ShapedLayer = (LayerOp | MergeOp) & Placed & {
  readonly from?: readonly number[];
  readonly input: Shape;
  readonly output: Shape;
  readonly params: number; // learnable parameters (what Torch's getParameters() counts)
  readonly macs: number; // multiply-accumulates for one image (conv and linear)
};
/** A layer of the chain that is no merge. */
export type ShapedOpLayer = Exclude<ShapedLayer, { readonly kind: MergeKind }>;
export const isMerge = (l: ShapedLayer): l is Extract<ShapedLayer, { readonly kind: MergeKind }> => l.kind === 'add' || l.kind === 'concat';
/** The chain's layers that are not merges (all of them for a model written as a chain). */
export const opLayers = (layers: readonly ShapedLayer[]): ShapedOpLayer[] => layers.filter((l): l is ShapedOpLayer => !isMerge(l));

export interface Transform {
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

export interface RegimeRow {
  readonly from: number;
  readonly to: number;
  readonly lr: number;
  readonly wd: number;
  readonly span: Span;
}

export interface TrainConfig {
  readonly batch: number;
  readonly epochs: number;
  readonly epochSize?: number; // batches per epoch; whole passes when absent
  readonly criterion: 'nll';
  readonly optimizer: { readonly kind: 'sgd'; readonly momentum: number };
  readonly regime: readonly RegimeRow[];
  readonly precision?: Precision; // the spec's `precision`; absent: fp32 (a build's --precision overrides it)
}

/** Arithmetic of the GEMM kernels: fp32 (exact mode, matches the cpu device tightly), tf32 or bf16 tensor cores. */
export type Precision = 'fp32' | 'tf32' | 'bf16';
export const PRECISIONS: readonly Precision[] = ['fp32', 'tf32', 'bf16'];

export interface ModelHeader {
  readonly name: string;
  readonly file: string;
  readonly input: Shape; // [C, H, W]: the crop the network sees
  readonly imageSize?: number; // short side before cropping (Torch's model.imageSize)
  readonly transform?: Transform;
  readonly train?: TrainConfig;
}

export interface ExpandedModel extends ModelHeader {
  readonly layers: readonly Layer[];
}

/** What `nincc check` and `inspect` describe: any network the language can write. */
export interface ShapedNetwork extends ModelHeader {
  readonly nodes: readonly ShapedNetNode[];
  readonly output: Shape;
  readonly totals: { readonly params: number; readonly macs: number };
}

/** What the back end lowers: a chain of the layers it knows, blocks opened into branches and merges (front/lowerable.ts). */
export interface ShapedModel extends ModelHeader {
  readonly layers: readonly ShapedLayer[];
  /** The network as written, for printouts (report.txt), when the chain was opened from one with blocks. */
  readonly network?: readonly ShapedNetNode[];
  readonly output: Shape;
  readonly totals: { readonly params: number; readonly macs: number };
}
