// The per-channel parameters of the bf16 tensor-core convs' fused prologues (the pending BN scale/shift of
// an input, the dReLU·dBN rebuild of a gradient), read where the staging loops need them least often: once
// per staged row into registers when a row is one channel, or once per block into a shared table when
// every element of a row may be another channel. The arithmetic is parts.ts's applyPending and
// rebuildGradient, term for term; only where each parameter comes from differs.
import { loadFloat, type FusionFlags } from './parts.js';

/** The buffers of channel parameters the gradient rebuild reads (rebuildParams minus g_y, read per element). */
export const rebuildFields = (f: FusionFlags): string[] =>
  f.gBn ? [...(f.gRelu ? ['g_scale', 'g_shift'] : []), 'g_mean', 'g_invstd', 'g_gamma', 'g_dbeta', 'g_dgamma'] : [];

/** The buffers of channel parameters a pending input transform reads. */
export const pendingFields = (f: FusionFlags): string[] => (f.inBn ? ['in_scale', 'in_shift'] : []);

/** Where a channel parameter comes from: `field` is its buffer's name. */
type Source = (field: string) => string;

/** Registers named after the buffers, loaded by rowLoads or tableLoads. */
export const fromRow: Source = (field) => `r_${field}`;


/** Per staged row: each parameter of channel `ch` into a register, 0 where the row is past the operand (`live` false). */
export function rowLoads(fields: readonly string[], ch: string, live: string): string[] {
  return fields.map((field) => `const float ${fromRow(field)} = ${live} ? nincc::ld(&${field}[${ch}]) : 0.0f;`);
}

export const rowRebuildLoads = (f: FusionFlags, ch: string, live: string) => rowLoads(rebuildFields(f), ch, live);
export const rowPendingLoads = (f: FusionFlags, ch: string, live: string) => rowLoads(pendingFields(f), ch, live);

/**
 * Before the main loop: a shared table of the rebuild's parameters for all `channels` channels (the block
 * reduces over every one of them), filled with coalesced loads and followed by a barrier.
 */
export function rebuildTable(f: FusionFlags, channels: number, threads: number): string[] {
  const fields = rebuildFields(f);
  if (fields.length === 0) return [];
  return [
    ...fields.map((field) => `NINCC_SHARED(float, t_${field}, ${channels});`),
    `for (int ch = int(threadIdx.x); ch < ${channels}; ch += ${threads}) {`,
    ...fields.map((field) => `  nincc::st(&t_${field}[ch], nincc::ld(&${field}[ch]));`),
    '}',
    '__syncthreads();',
  ];
}

/** The shared memory rebuildTable declares for `channels` channels. */
export const rebuildTableBytes = (f: FusionFlags, channels: number) => rebuildFields(f).length * channels * 4;

/**
 * Per staged element: the rebuild's parameters of channel `ch` from the table into registers. Every lane
 * reads them, also for the taps it will not load (`ch` must be a valid channel there too), so a warp reads
 * one address per field — a broadcast — and the emulator, which pairs a lane's k-th execution of a line
 * with its neighbours', sees every lane execute it equally often.
 */
export function tableLoads(f: FusionFlags, ch: string): string[] {
  const fields = rebuildFields(f);
  if (fields.length === 0) return [];
  return [`const int table_ch = ${ch};`, ...fields.map((field) => `const float ${fromRow(field)} = nincc::ld(&t_${field}[table_ch]);`)];
}

/** applyPending with its parameters from `from`. */
export function applyPendingFrom(f: FusionFlags, v: string, from: Source): string[] {
  return [...(f.inBn ? [`${v} = nincc::ffma(${v}, ${from('in_scale')}, ${from('in_shift')});`] : []), ...(f.inRelu ? [`${v} = ${v} > 0.0f ? ${v} : 0.0f;`] : [])];
}

/**
 * rebuildGradient with its channel parameters from `from` (g_y read at `at`, or its value `y` where the caller has it:
 * a ring of image slots, conv-mma-wgrad-async-image-ring.ts). Needs `inv_m` with BN.
 */
export function rebuildGradientFrom(f: FusionFlags, d: string, at: string, from: Source, y = loadFloat('g_y', at, f.gyBf16)): string[] {
  if (f.gBn) {
    return [
      '{',
      `  const float yv = ${y};`,
      ...(f.gRelu ? [`  if (!(nincc::ffma(yv, ${from('g_scale')}, ${from('g_shift')}) > 0.0f)) ${d} = 0.0f;`] : []),
      `  const float xhat = (yv - ${from('g_mean')}) * ${from('g_invstd')};`,
      `  ${d} = ${from('g_gamma')} * ${from('g_invstd')} * (${d} - ${from('g_dbeta')} * inv_m - xhat * ${from('g_dgamma')} * inv_m);`,
      '}',
    ];
  }
  return f.gRelu ? [`if (!(${y} > 0.0f)) ${d} = 0.0f;`] : [];
}
