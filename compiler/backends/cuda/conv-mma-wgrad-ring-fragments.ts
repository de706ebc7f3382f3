// A weight gradient's B fragments by ldmatrix straight from its cp.async ring of dY' windows (issue #15,
// the ablation `wgradRingFragments` (on)), with no B tile staged from the ring each slice (conv-mma-wgrad-async-ring.ts). A ring
// row holds the slice's positions in their own order, k contiguous, which is the layout ldmatrix wants for B
// (rows = D's columns k, 16 bytes = 8 consecutive positions); so A is staged from the halo in that order too
// (K_OFFSET_NATURAL: a thread's `quarter` holds positions 4·quarter..4·quarter + 3) where stageAlongK interleaves them,
// 16 taps × one chunk a load instruction from a halo laid out for it (conv-mma-wgrad-natural-staging.ts: conflict-free).
// ldmatrix needs 16-byte rows, so every slice must start on a ring chunk: the splits' bounds fall on multiples of
// the chunk (8 positions), not at total·split/splits. The window keeps its pitch of 40 positions (80 bytes: the 8
// rows of an ldmatrix matrix on 8 distinct 16-byte bank groups) and copies only its 32. Both the split bounds and the
// k order within a slice change the summation order, so the weight gradient is not bitwise that of
// the default B tile; it is deterministic (fixed splits, fixed order), and equal within bf16 rounding.
// The bias gradient, which the B staging summed, is an MMA row instead: A's first padding row (tap C·R·S, in the last
// row tile) is all ones on the split's positions, so D's row C·R·S is Σ_j dY'[k][j] in position order (fp32 fma, the
// products exact), stored as the split's bias partial by the blocks of that row tile. docs/design.md §4.1.
import type { Consts } from './parts.js';
import type { AsyncRing } from './conv-mma-wgrad-async-ring.js';

const taps = (c: Consts<'conv_wgrad_fused'>) => c.C * c.R * c.S;

/**
 * Whether B may come from the ring of a kernel with `bm`-row tiles: 16-byte chunks (rows of 40 positions, 80 bytes: every
 * chunk 16-byte aligned for ldmatrix) and whole 8-row groups of copies (asyncRingPrologue's `aligned`); no dY' store (it reads the staged values), not a wave
 * split (its bounds are whole slices already), and for a bias gradient a padding row in the last row tile to carry it.
 */
export const ringFragmentsFit = (c: Consts<'conv_wgrad_fused'>, r: AsyncRing | undefined, bm: number): r is AsyncRing =>
  r !== undefined && r.chunk === 8 && r.rows % 8 === 0 && !c.dyOut && !c.waveSplits && (!c.bias || taps(c) % bm !== 0);

/** The row tile whose blocks hold the bias row (tap C·R·S): the last split's fold sums the bias there (conv-mma-last-cta-wgrad.ts). */
export const biasRowTile = (c: Consts<'conv_wgrad_fused'>, bm: number) => Math.floor(taps(c) / bm);

/** A staging's perElement, after the tap's own: row C·R·S is 1 on the split's positions (haloOperand's `a_live`). */
export const onesRow = (c: Consts<'conv_wgrad_fused'>) => [`if (int(m0) + row == ${taps(c)} && (a_live >> e & 1)) v = 1.0f;  // the bias row`];

/** The epilogue's store of the bias row's accumulator `d` at (m, col): the split's bias partial. */
export const biasRowStore = (c: Consts<'conv_wgrad_fused'>) => [`if (m == ${taps(c)} && col < ${c.K}) nincc::st(&bpart[split * ${c.K} + col], d);  // the bias row`];

/** The split's positions `lo`, `hi`, on the ring's chunks (n·P·Q is a multiple of the chunk, so the last split ends at total). */
export const chunkSplitRange = (c: Consts<'conv_wgrad_fused'>, r: AsyncRing): string[] => [
  `const long long lo = total * split / ${c.splits} / ${r.chunk} * ${r.chunk}, hi = total * (split + 1) / ${c.splits} / ${r.chunk} * ${r.chunk};  // on the ring's chunks (conv-mma-wgrad-ring-fragments.ts)`,
];

/** mmaSlice's B address: lane's ldmatrix row `row`, 16-byte chunk `chunk` of stage it % S. */
export const ringBAddress = (r: AsyncRing) => `&bring[(int(it % ${r.stages}) * ${r.rows} + row) * ${r.window} + chunk * 8]`;
