// The wgrad_reduce launch folded into the bf16 weight gradient (issue #15, FusedTrainOptions.wgradLastSplit):
// after a block has stored its split's partials, it fences and takes its output tile's ticket; the block that
// draws the last one (splits − 1) adds the tile's partials in split order, exactly as wgrad_reduce adds them, so
// dW and the bias gradient are bitwise unchanged whichever split finished last (docs/design.md §5).
import type { Consts } from './parts.js';
import { wgradTicketsBound } from '../../lower/ops.js';

/** The shape of a weight-gradient launch: its tile and grid over C·R·S × K (conv-mma-grad.ts). */
export interface WgradTiles {
  readonly BM: number;
  readonly BN: number;
  readonly threads: number;
  readonly CRS: number;
  // A stem over x space-to-depth (conv-mma-stem-s2d-wgrad.ts): the stem's C·R·S, the width of its partials and dW;
  // the kernel's stem_tap(m) gives a tile row's place in them (−1: a padded tap, none).
  readonly stemTaps?: number;
  // The row tile whose blocks wrote the bias partials: 0 (its blocks of column 0), or the one holding the bias row
  // of B's fragments from a ring (conv-mma-wgrad-ring-fragments.ts).
  readonly biasTile?: number;
  // Rows tap-major within octets of channels (conv-mma-wgrad-taps-halo.ts): the fold walks the block's dW rows by its dw_row.
  readonly tapMajor?: true;
}

/** dw and db (with a bias) and the tickets: the parameters the fold adds after wpart and bpart. */
export const lastSplitParams = (c: Consts<'conv_wgrad_fused'>) =>
  c.lastSplit ? [{ name: 'dw', out: true }, ...(c.bias ? [{ name: 'db', out: true }] : []), { name: 'tickets', out: true }] : [];

/**
 * The epilogue's tail. `bs` (the B tile, idle once the main loop's last barrier has passed) carries thread 0's
 * ticket to the block. The tickets are counters in f32 words; atomicInc wraps each back to 0 as its last split
 * draws it, so the next weight gradient (and step) finds them 0. Reads of other blocks' partials skip L1 (ldcg).
 */
export function lastSplitReduce(c: Consts<'conv_wgrad_fused'>, t: WgradTiles): string[] {
  if (!c.lastSplit) return [];
  const tiles = Math.ceil(t.CRS / t.BM) * Math.ceil(c.K / t.BN);
  const allocated = wgradTicketsBound(t.stemTaps ?? t.CRS, c.K); // lowering sizes them by the layer's own C·R·S
  if (tiles > allocated) throw new Error(`internal error: a ${t.BM}×${t.BN} weight-gradient tile gives ${tiles} tickets, more than the ${allocated} lowering allocated`);
  const last = `${c.splits - 1}u`;
  // dw_row (conv-mma-wgrad-taps-halo.ts wgradTapsRows): the block's dW rows in dW's order, an edge block's spare lanes on its last.
  const tapMajor = [
    `  for (int q = t; q < ${t.BM * t.BN}; q += ${t.threads}) {`,
    `    const int crs = dw_row(min(q % ${t.BM}, 8 * (u1 - u0) - 1)), col = n0 + q / ${t.BM};`,
    `    if (col < ${c.K}) {`,
    '      float s = 0.0f;',
    `      for (int sp = 0; sp < ${c.splits}; ++sp) s += nincc::ldcg(&wpart[((long long)sp * ${c.K} + col) * ${t.CRS} + crs]);`,
    `      nincc::st(&dw[(long long)col * ${t.CRS} + crs], s);`,
    '    }',
  ];
  return [
    '// The last split of this tile to finish sums every split\'s partials in split order (wgrad_reduce folded in).',
    '__threadfence();  // this thread\'s partials are visible to every block before its block takes the ticket',
    '__syncthreads();',
    `if (t == 0) bs[0].x = int(atomicInc(reinterpret_cast<unsigned*>(tickets) + blockIdx.y * gridDim.x + blockIdx.x, ${last}) == ${last});`,
    '__syncthreads();',
    'if (bs[0].x != 0) {',
    ...(t.tapMajor ? tapMajor : [
    `  for (int q = t; q < ${t.BM * t.BN}; q += ${t.threads}) {`,
    `    const long long m = m0 + q % ${t.BM};`,
    `    const int col = n0 + q / ${t.BM};`,
    ...(t.stemTaps === undefined
      ? [
          `    if (m < ${t.CRS} && col < ${c.K}) {`,
          '      float s = 0.0f;',
          `      for (int sp = 0; sp < ${c.splits}; ++sp) s += nincc::ldcg(&wpart[((long long)sp * ${c.K} + col) * ${t.CRS} + m]);`,
          `      nincc::st(&dw[(long long)col * ${t.CRS} + m], s);`,
          '    }',
        ]
      : [
          `    const int at = m < ${t.CRS} ? stem_tap(int(m)) : -1;  // the row's stem tap, as the partials' store put it`,
          `    if (at >= 0 && col < ${c.K}) {`,
          '      float s = 0.0f;',
          `      for (int sp = 0; sp < ${c.splits}; ++sp) s += nincc::ldcg(&wpart[((long long)sp * ${c.K} + col) * ${t.stemTaps} + at]);`,
          `      nincc::st(&dw[(long long)col * ${t.stemTaps} + at], s);`,
          '    }',
        ])]),
    '  }',
    ...(c.bias
      ? [
          `  // The bias: the blocks of row tile ${t.biasTile ?? 0} wrote its partials, so the last split of tile (${t.biasTile ?? 0}, y) sums them.`,
          `  if (blockIdx.x == ${t.biasTile ?? 0}) for (int row = t; row < ${t.BN}; row += ${t.threads}) if (n0 + row < ${c.K}) {`,
          '    float s = 0.0f;',
          `    for (int sp = 0; sp < ${c.splits}; ++sp) s += nincc::ldcg(&bpart[sp * ${c.K} + n0 + row]);`,
          '    nincc::st(&db[n0 + row], s);',
          '  }',
        ]
      : []),
    '}',
  ];
}
