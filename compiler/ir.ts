// The layer IR: a flat, readonly list of Torch-style layers with their source spans and shapes.
import type { Span } from '../grammar/diagnostics.js';

export type LayerKind = 'conv' | 'bn' | 'relu' | 'maxpool' | 'avgpool' | 'view' | 'linear' | 'logsoftmax' | 'softmax' | 'dropout';

export interface ConvAttrs { readonly nIn: number; readonly nOut: number; readonly kW: number; readonly kH: number; readonly dW: number; readonly dH: number; readonly padW: number; readonly padH: number; readonly bias: boolean }
export interface BatchNormAttrs { readonly nFeatures: number; readonly eps: number; readonly momentum: number; readonly affine: boolean }
export interface PoolAttrs { readonly kW: number; readonly kH: number; readonly dW: number; readonly dH: number; readonly padW: number; readonly padH: number }
export interface ViewAttrs { readonly sizes: readonly number[] }
export interface LinearAttrs { readonly nIn: number; readonly nOut: number; readonly bias: boolean }
export interface DropoutAttrs { readonly p: number }

export type LayerOp =
  | { readonly kind: 'conv'; readonly attrs: ConvAttrs }
  | { readonly kind: 'bn'; readonly attrs: BatchNormAttrs }
  | { readonly kind: 'maxpool'; readonly attrs: PoolAttrs }
  | { readonly kind: 'avgpool'; readonly attrs: PoolAttrs }
  | { readonly kind: 'view'; readonly attrs: ViewAttrs }
  | { readonly kind: 'linear'; readonly attrs: LinearAttrs }
  | { readonly kind: 'dropout'; readonly attrs: DropoutAttrs }
  | { readonly kind: 'relu' | 'logsoftmax' | 'softmax'; readonly attrs: Record<string, never> };

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

export type ShapedLayer = Layer & {
  readonly input: Shape;
  readonly output: Shape;
  readonly params: number; // learnable parameters (what Torch's getParameters() counts)
  readonly macs: number; // multiply-accumulates for one image (conv and linear)
};

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
}

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

export interface ShapedModel extends ModelHeader {
  readonly layers: readonly ShapedLayer[];
  readonly output: Shape;
  readonly totals: { readonly params: number; readonly macs: number };
}
