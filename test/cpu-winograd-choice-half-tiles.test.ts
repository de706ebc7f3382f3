// The winogradHalfTiles ablation (compiler/ablations.ts) as generated code: by default a packed conv's
// Winograd call lets conv_winograd.h multiply a column tile of at most half kTileCols Winograd tiles through
// its first half of lanes (NIN's k31 at batch 1: 16 F(2x2,3x3) tiles); with the switch off the call passes
// half_tiles=false. The kernel's numerics (float64 reference, 1, 2 and all threads, and the same bits
// either way) are runtime/kernels-test/test_conv_winograd.cc's.
import { describe, expect, it } from 'vitest';
import { compiledNin, kernelSource as kernel } from './cpu-nin-compiled.js';

const compiled = (ablate: boolean) => compiledNin(ablate ? { winogradHalfTiles: false } : undefined);

describe('winogradHalfTiles', () => {
  it('leaves the half-width Winograd tiles to the kernel by default, and turns them off in every Winograd call when ablated', () => {
    const on = compiled(false), off = compiled(true);
    const k31On = kernel(on.cpu.text, 'k31_conv_infer'), k31Off = kernel(off.cpu.text, 'k31_conv_infer');
    expect(k31On).toMatch(/conv2d_forward_winograd<WinogradKind::F2x3>\(shape, [^\n]*, true\);/);
    expect(k31On).not.toContain('half_tiles');
    // F(2x2,3x3) below batch 5 and F(4x4,3x3) from 5 up (the host-L3 choice), both with the switch.
    expect(k31Off.match(/, ConvOutput\{\}, \/\*half_tiles=\*\/false\);/g)).toHaveLength(2);
    // Every Winograd inference call (k11 F(2,5), k21's two, k31's two), and no GEMM call, carries it.
    const winogradCalls = (t: string) => (t.match(/  (?:if \(a->n < \d+\) |else )?conv2d_forward_winograd<WinogradKind::F\dx\d>\(/g) ?? []).length;
    expect(winogradCalls(off.cpu.text)).toBe(5);
    expect(off.cpu.text.match(/half_tiles=\*\/false/g)).toHaveLength(5);
    expect(on.cpu.text).not.toContain('half_tiles');
    const step = off.lowered.programs.flatMap((p) => p.steps).find((s) => s.kernel === 'k31_conv_infer')!;
    expect(step.consts).toMatchObject({ winogradFullTiles: true });
  });
});
