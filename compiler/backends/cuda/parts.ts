// Pieces the CUDA kernel generators share: the kernel record, launch rules, parameter lists and the
// per-channel prologue/epilogue snippets of the fused BN+ReLU kernels (docs/design.md §4).
import type { PlanLaunch } from '../../emit/plan.js';
import type { KernelStep } from '../../lower/program-ir.js';
import { opBuffers, type OpConsts, type OpKind } from '../../lower/ops.js';

export interface CudaKernel {
  readonly params: string;
  readonly body: string[];
  readonly launch: PlanLaunch;
  readonly fused?: string; // what the kernel fuses, for report.txt
  readonly tile?: string; // the tile configuration chosen for the layer, for report.txt
  readonly minBlocks?: number; // __launch_bounds__'s resident blocks a SM: ptxas keeps the registers that let them fit
}

export const BLOCK = 256;

/** A C++ float literal that reads back as the same double (then rounded to float, as the cpu kernels do). */
export function cppDouble(v: number): string {
  const s = String(v);
  return /[.eE]/.test(s) ? s : `${s}.0`;
}

/** One thread per element of `perImage` elements of each image: grid (⌈perImage/block⌉, 1, N). */
export function perElement(perImage: number): PlanLaunch {
  const block = Math.min(BLOCK, Math.max(32, Math.ceil(perImage / 32) * 32));
  return { grid: [Math.ceil(perImage / block), 1, 1], batchAxis: 2, block: [block, 1, 1], shared: 0 };
}

/**
 * Where a warp's statistics partial goes in the [n][tile][C] layout of channelTiles: tile blockIdx.x
 * of image `img`, channel `ch` (the names of the kernel's variables).
 */
export const tileSlot = (C: number, HW: number, ch = 'ch', img = 'img') => `((long long)${img} * ${Math.ceil(HW / 32)} + blockIdx.x) * ${C} + ${ch}`;

/** One thread per element of a whole-batch array of `count` elements (no batch axis). */
export function flat(count: number): PlanLaunch {
  return { grid: [Math.max(1, Math.ceil(count / BLOCK)), 1, 1], block: [BLOCK, 1, 1], shared: 0 };
}

/**
 * The per-channel tile launch: block 32×8 (x: 32 positions of a plane, y: 8 channels, so each warp
 * is one channel), grid (⌈HW/32⌉, ⌈C/8⌉, N). Tile t of image n covers positions 32t … 32t+31: the
 * statistics partials of every kernel use this tiling, [n][tile][C].
 */
export function channelTiles(C: number, HW: number): PlanLaunch {
  return { grid: [Math.ceil(HW / 32), Math.ceil(C / 8), 1], batchAxis: 2, block: [32, 8, 1], shared: 0 };
}

export interface Param {
  readonly name: string;
  readonly out?: boolean; // written by the kernel
  readonly int?: boolean; // int32 elements
  readonly u8?: boolean; // bytes (a stem conv's uint8 images)
  readonly bf16?: boolean; // bf16 elements (a gradient stored rounded: lower/ops.ts Dtype)
}

const dtypeOf = (p: Param) => (p.int ? 'i32' : p.u8 ? 'u8' : p.bf16 ? 'bf16' : 'f32');
const elementType = { i32: 'int', u8: 'unsigned char', bf16: 'nincc::bf16', f32: 'float' } as const;

/** Element `at` of buffer `p` as a float, from fp32 storage or bf16 (exact: a bf16 value is a float). */
export const loadFloat = (p: string, at: string, bf16?: boolean) => (bf16 ? `nincc::bf16_to_float(nincc::ld(&${p}[${at}]))` : `nincc::ld(&${p}[${at}])`);

/** Store float `v` as element `at` of buffer `p`: as is, or rounded to bf16 (round to nearest even). */
export const storeFloat = (p: string, at: string, v: string, bf16?: boolean) => (bf16 ? `nincc::st(&${p}[${at}], nincc::to_bf16(${v}));` : `nincc::st(&${p}[${at}], ${v});`);

/** Parameter list: the step's buffers (inputs const, outputs writable), then n, then the scalars (then the call's seed). */
export function params(k: KernelStep, list: readonly (string | Param)[], scalars: readonly string[] = [], seed = false): string {
  const ps = list.map((p) => (typeof p === 'string' ? { name: p } : p));
  // The kernel's parameters are the op's contract (compiler/lower/ops.ts): the same names, order, direction and dtype.
  const contract = opBuffers(k.op, k.consts).map((b) => `${b.dir === 'in' ? 'in' : 'out'} ${b.dtype} ${b.name}`);
  const named = ps.map((p) => `${p.out ? 'out' : 'in'} ${dtypeOf(p)} ${p.name}`);
  if (named.join(', ') !== contract.join(', ')) throw new Error(`internal error: the cuda kernel of ${k.kernel} (${k.op}) takes (${named.join(', ')}), its contract says (${contract.join(', ')})`);
  const type = (p: Param) => `${p.out ? '' : 'const '}${elementType[dtypeOf(p)]}*`;
  return [...ps.map((p) => `${type(p)} ${p.name}`), 'int n', ...scalars.map((s) => `float ${s}`), ...(seed ? ['unsigned long long seed'] : [])].join(', ');
}

/** The index prologue of a per-element kernel: `i` in this image, `img` the image (blockIdx.z < n). */
export const element = (count: number) => [
  'const int img = int(blockIdx.z);',
  `const int i = int(blockIdx.x * blockDim.x + threadIdx.x);`,
  `if (img >= n || i >= ${count}) return;`,
];

/** Flags of the fused kernels, as compiler/lower/train-fused.ts sets them. */
export interface FusionFlags {
  readonly inBn?: boolean; // the input value has a pending BN scale/shift …
  readonly inRelu?: boolean; // … and/or a pending ReLU, applied on load
  readonly gBn?: boolean; // the incoming gradient is of a value with a pending BN …
  readonly gRelu?: boolean; // … and/or ReLU: rebuilt into the raw gradient on load
  readonly outStats?: boolean; // the gradient written is of a value with a pending BN: Σdz, Σdz·x̂ partials
  readonly outRelu?: boolean;
  readonly gyBf16?: boolean; // the rebuild's g_y is a conv output stored in bf16 (lower/train-fused.ts bf16ConvOut) …
  readonly eyBf16?: boolean; // … and so is the partials' e_y
}

/**
 * The constants of the ops a generator serves (compiler/lower/ops.ts), each op's own, plus the flags
 * the others of its ops set (absent means off): convForward serves conv_fwd_fused and conv_infer alike.
 */
export type Consts<K extends OpKind> = OpConsts[K] & FusionFlags & { readonly relu?: boolean; readonly stats?: boolean };

/** The `// fuses:` text of a kernel: the parts that apply, joined. */
export const fusedText = (parts: (string | false | undefined)[]) => parts.filter(Boolean).join(' + ');

/** Where a conv's output goes (conv.ts, conv-mma.ts): only an inference conv may close a residual block or write a concat slice (lower/infer.ts). */
export interface OutputPlace {
  readonly residual: boolean;
  /** y's channels, and this conv's first among them */
  readonly total: number;
  readonly offset: number;
}

export function outputPlace(c: Consts<'conv_fwd_fused' | 'conv_infer'>): OutputPlace {
  return 'bnFolded' in c ? { residual: c.residual === true, total: c.yTotal ?? c.K, offset: c.yOffset ?? 0 } : { residual: false, total: c.K, offset: 0 };
}

/** Buffer names of the prologue that applies the input's pending transform. */
export const inputParams = (f: FusionFlags): string[] => (f.inBn ? ['in_scale', 'in_shift'] : []);

/** `v = relu?(scale·v + shift)` for channel `ch`: the forward prologue (the same fmaf the backward's mask recomputes). */
export function applyPending(f: FusionFlags, v: string, ch: string): string[] {
  return [...(f.inBn ? [`${v} = nincc::ffma(${v}, nincc::ld(&in_scale[${ch}]), nincc::ld(&in_shift[${ch}]));`] : []), ...(f.inRelu ? [`${v} = ${v} > 0.0f ? ${v} : 0.0f;`] : [])];
}

/** Buffer names of the prologue that rebuilds a raw gradient from the gradient of a pending value. */
export function rebuildParams(f: FusionFlags): Param[] {
  const y = { name: 'g_y', bf16: f.gyBf16 === true };
  if (f.gBn) return [y, ...['g_scale', 'g_shift', 'g_gamma', 'g_mean', 'g_invstd', 'g_dgamma', 'g_dbeta'].map((name) => ({ name }))];
  return f.gRelu ? [y] : [];
}

/**
 * `d` (the gradient of the value at flat index `at`, channel `ch`) → the gradient of the raw buffer:
 * dz = d·[z > 0]; with BN, dy = γ·invstd·(dz − dβ/M − x̂·dγ/M), x̂ = (y − μ)·invstd. Needs `inv_m` = 1/M.
 */
export function rebuildGradient(f: FusionFlags, d: string, at: string, ch: string): string[] {
  if (f.gBn) {
    return [
      '{',
      `  const float yv = ${loadFloat('g_y', at, f.gyBf16)};`,
      ...(f.gRelu ? [`  if (!(nincc::ffma(yv, nincc::ld(&g_scale[${ch}]), nincc::ld(&g_shift[${ch}])) > 0.0f)) ${d} = 0.0f;`] : []),
      `  const float xhat = (yv - nincc::ld(&g_mean[${ch}])) * nincc::ld(&g_invstd[${ch}]);`,
      `  ${d} = nincc::ld(&g_gamma[${ch}]) * nincc::ld(&g_invstd[${ch}]) * (${d} - nincc::ld(&g_dbeta[${ch}]) * inv_m - xhat * nincc::ld(&g_dgamma[${ch}]) * inv_m);`,
      '}',
    ];
  }
  return f.gRelu ? [`if (!(${loadFloat('g_y', at, f.gyBf16)} > 0.0f)) ${d} = 0.0f;`] : [];
}

/** Buffer names of the epilogue that writes Σdz and Σdz·x̂ partials for the gradient's pending BN. */
export const statsParams = (f: FusionFlags): Param[] =>
  f.outStats ? [{ name: 'e_y', bf16: f.eyBf16 === true }, 'e_scale', 'e_shift', 'e_mean', 'e_invstd', { name: 'e_dz', out: true }, { name: 'e_dzx', out: true }].map((p) => (typeof p === 'string' ? { name: p } : p)) : [];

/**
 * Epilogue: this lane's gradient `d` at flat index `at` of channel `ch` (valid when `valid`) joins its
 * warp's Σdz and Σdz·x̂, which lane 0 writes to partial `slot` (the warp is one channel, 32 positions).
 * Every lane of the warp must reach it (no early return before).
 */
export function backwardStats(f: FusionFlags, d: string, at: string, ch: string, valid: string, slot: string): string[] {
  if (!f.outStats) return [];
  return [
    '{',
    `  float dz = 0.0f, dzx = 0.0f;`,
    `  if (${valid}) {`,
    `    const float yv = ${loadFloat('e_y', at, f.eyBf16)};`,
    `    dz = ${f.outRelu ? `nincc::ffma(yv, nincc::ld(&e_scale[${ch}]), nincc::ld(&e_shift[${ch}])) > 0.0f ? ${d} : 0.0f` : d};`,
    `    dzx = dz * ((yv - nincc::ld(&e_mean[${ch}])) * nincc::ld(&e_invstd[${ch}]));`,
    '  }',
    '  dz = nincc::warp_sum(dz);',
    '  dzx = nincc::warp_sum(dzx);',
    `  if (threadIdx.x == 0) { nincc::st(&e_dz[${slot}], dz); nincc::st(&e_dzx[${slot}], dzx); }`,
    '}',
  ];
}

/**
 * Forward statistics of a warp's 32 values of one channel (`count` of them valid): the tile's mean and
 * Σ(v − mean)², which the finalize merges (Chan's formula) in float64, so Σy² − Mμ² never cancels.
 */
export function forwardStats(v: string, valid: string, count: string, slot: string): string[] {
  return [
    '{',
    `  const float tile_mean = nincc::warp_sum(${valid} ? ${v} : 0.0f) / float(${count});`,
    `  const float dev = ${valid} ? ${v} - tile_mean : 0.0f;`,
    '  const float tile_m2 = nincc::warp_sum(dev * dev);',
    `  if (threadIdx.x == 0) { nincc::st(&st_mean[${slot}], tile_mean); nincc::st(&st_m2[${slot}], tile_m2); }`,
    '}',
  ];
}
