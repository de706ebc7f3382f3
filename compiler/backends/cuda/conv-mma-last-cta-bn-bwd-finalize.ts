// The bn_bwd_finalize launch folded into the pool backward that writes the BN's Σdz, Σdz·x̂ partials (issue #15,
// FusedTrainOptions.bnBwdLastBlock): after a block has stored its channels' partials, it fences and takes each
// channel's ticket; the block that draws a channel's last one sums that channel's partials in the separate
// finalize's order — row lane r over parts r, r + 128, … in double, then the same 128-lane tree — so dγ and dβ are
// bitwise bnBackwardFinalize's (bn-finalize-columns.ts) whichever block finished last (docs/design.md §5).
// Only the pool backwards take it: their blocks tile a few channels each, so a channel's last block reads 0.03–0.4
// MiB of NIN's partials; a conv data gradient's last block per channel tile would read 0.25–9.2 MiB
// (bench/logs/i15K-bn-tail-estimate.out), slower than the launch it saves.
import { FINALIZE_ROW_LANES } from './bn-finalize-columns.js';

/** The parameters the fold adds after the partials: the BN's gradients and the per-channel tickets. */
export const bnBwdFinalizeParams = (fold: boolean | undefined) => (fold === true ? [{ name: 'dgamma', out: true }, { name: 'dbeta', out: true }, { name: 'tickets', out: true }] : []);

/** Shared bytes the fold declares: the two trees of doubles and the block's won channels. */
export const bnBwdFinalizeShared = (fold: boolean | undefined) => (fold === true ? 2 * FINALIZE_ROW_LANES * 8 + 4 : 0);

/** Where a block's partials lie: the channels it wrote, and how many blocks write each channel's (all over `n` images). */
export interface BnBwdFinalizeBlocks {
  readonly C: number;
  readonly planeTiles: number;
  readonly threads: number;
  /** The most channels one block writes (its tickets' bits in one word). */
  readonly channelsPerBlock: number;
  /** C++ expressions over `ch` and the block: the channel range this block wrote, and the blocks of one image that write channel `ch`. */
  readonly firstChannel: string;
  readonly lastChannel: string;
  readonly writersOfChannel: string;
}

/**
 * The kernel's tail, after every partial of the block is stored (no early return between). Tickets are counters in
 * f32 words, one a channel; atomicInc wraps each back to 0 as its last writer draws it, so the next launch (and step)
 * finds them 0. Reads of other blocks' partials skip L1 (ldcg).
 */
export function bnBwdFinalizeTail(fold: boolean | undefined, b: BnBwdFinalizeBlocks): string[] {
  if (fold !== true) return [];
  if (b.threads < FINALIZE_ROW_LANES) throw new Error(`internal error: the folded BN finalize needs ${FINALIZE_ROW_LANES} threads a block, not ${b.threads}`);
  if (b.channelsPerBlock > 32) throw new Error(`internal error: the folded BN finalize keeps a block's won channels in one 32-bit word, not ${b.channelsPerBlock}`);
  const L = FINALIZE_ROW_LANES;
  return [
    '// The last block to write a channel\'s partials sums them in bn_bwd_finalize\'s order (that launch folded in).',
    `NINCC_SHARED(double, fin_dz, ${L});`,
    `NINCC_SHARED(double, fin_dzx, ${L});`,
    'NINCC_SHARED(unsigned, fin_won, 1);',
    '__threadfence();  // this thread\'s partials are visible to every block before its block takes the tickets',
    '__syncthreads();',
    `const int fin_first = ${b.firstChannel}, fin_last = ${b.lastChannel};`,
    '// Thread 0 takes every channel\'s ticket at once; bit i of fin_won: this block drew channel fin_first + i\'s last one.',
    'if (t == 0) {',
    '  unsigned won = 0u;',
    '  for (int ch = fin_first; ch <= fin_last; ++ch) {',
    `    const unsigned last = unsigned(n * (${b.writersOfChannel}) - 1);`,
    '    if (atomicInc(reinterpret_cast<unsigned*>(tickets) + ch, last) == last) won |= 1u << (ch - fin_first);',
    '  }',
    '  nincc::st(&fin_won[0], won);',
    '}',
    '__syncthreads();',
    'const unsigned won = nincc::ld(&fin_won[0]);',
    'for (int ch = fin_first; ch <= fin_last; ++ch) {',
    '  if (((won >> (ch - fin_first)) & 1u) == 0u) continue;  // uniform over the block',
    '  double dz_own = 0.0, dzx_own = 0.0;',
    `  if (t < ${L}) {`,
    // A channel's partials are n × planeTiles rows C apart; one row's offset at a time keeps the tail's registers few (ptxas spilled k20's on sm_90 with a 64-bit row index).
    `    const float* dz_at = e_dz + ch;`,
    `    const float* dzx_at = e_dzx + ch;`,
    `    for (int part = t; part < n * ${b.planeTiles}; part += ${L}) { dz_own += double(nincc::ldcg(dz_at + (long long)part * ${b.C})); dzx_own += double(nincc::ldcg(dzx_at + (long long)part * ${b.C})); }`,
    '    nincc::st(&fin_dz[t], dz_own);',
    '    nincc::st(&fin_dzx[t], dzx_own);',
    '  }',
    '  __syncthreads();',
    `  for (int s = ${L / 2}; s > 0; s >>= 1) {`,
    '    if (t < s) { nincc::st(&fin_dz[t], nincc::ld(&fin_dz[t]) + nincc::ld(&fin_dz[t + s])); nincc::st(&fin_dzx[t], nincc::ld(&fin_dzx[t]) + nincc::ld(&fin_dzx[t + s])); }',
    '    __syncthreads();',
    '  }',
    '  if (t == 0) { nincc::st(&dbeta[ch], float(nincc::ld(&fin_dz[0]))); nincc::st(&dgamma[ch], float(nincc::ld(&fin_dzx[0]))); }',
    '  __syncthreads();  // the trees are read before the next channel\'s',
    '}',
  ];
}
