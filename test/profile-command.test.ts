// `nincc profile` (issue #14): the emulator's counters of every generated kernel of an inference batch
// and a training step, sampled and scaled to the grid, against counts worked out by hand, and the time
// model's table. A small spec at batch 4, without nvcc (occupancy then assumed), to stay fast.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProfileReport } from '../runtime/profile/run-profile.js';
import { kernelTable, withPredictions } from '../compiler/report/kernel-table.js';
import { nincc } from './cli-run.js';

const SPEC = `model tiny {
  input 2x8x8
  conv(2, 4, 3, 3, 1, 1, 1, 1)  bn(4)  relu
  view(-1)  linear(256, 3)  logsoftmax
}
`;

describe('nincc profile', () => {
  let work: string;
  let spec: string;
  let json: ProfileReport;
  let text: string;
  let progress: string;
  let built: string; // report.txt as the build wrote it
  let written: string; // the --write-report run's stderr
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'nincc-profile-'));
    spec = join(work, 'tiny.model');
    writeFileSync(spec, SPEC);
    const env = { NINCC_NVCC: '0' };
    const r = nincc(['profile', spec, '--batch', '4', '--json'], { env, cwd: work, timeoutMs: 300_000 });
    expect(r.code, r.stderr).toBe(0);
    json = JSON.parse(r.stdout) as ProfileReport;
    progress = r.stderr;
    built = readFileSync(join(work, 'build/tiny-emu/report.txt'), 'utf8');
    // The artifact is built now: the text run reuses it, with every block run, and writes its predictions.
    const t = nincc(['profile', spec, '--batch', '4', '--gpu', 'a100', '--sample', '0', '--write-report'], { env, cwd: work, timeoutMs: 300_000 });
    expect(t.code, t.stderr).toBe(0);
    text = t.stdout;
    written = t.stderr;
  }, 600_000);
  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const kernel = (name: string) => {
    const k = json.kernels.find((x) => x.kernel === name);
    if (!k) throw new Error(`no ${name} in ${json.kernels.map((x) => x.kernel).join(', ')}`);
    return k;
  };

  it('counts FMAs as hand-worked: the conv in 32x32 output tiles of 16-deep slices, the linear one per weight and image', () => {
    // conv 2->4, 3x3 on 8x8: GEMM M = 4 channels, N = 64 positions, K = 18 taps; 32x32 tiles: 2 per
    // image (64 / 32) x 1 (4 channels) x 4 images = 8 blocks of 32x32 outputs over 2 slices of 16.
    expect(kernel('k1_conv_infer').counts.ffma).toBe(8 * 32 * 32 * 32);
    expect(kernel('k1_conv_infer').counts.blocks).toBe(8);
    expect(kernel('k1_conv_fwd_fused').counts.ffma).toBe(8 * 32 * 32 * 32);
    // linear 256 -> 3 at batch 4: one FMA per weight per image, forward and for each gradient.
    expect(kernel('k5_linear_infer').counts.ffma).toBe(4 * 3 * 256);
    expect(kernel('k5_linear_bwd_data').counts.ffma).toBe(4 * 3 * 256);
    expect(kernel('k5_linear_bwd_weight').counts.ffma).toBe(4 * 3 * 256);
    // Each thread of the linear loads its image's 256 inputs and its weight row: every load counted.
    expect(kernel('k5_linear_infer').counts.global_load_sectors).toBeGreaterThan(0);
    // The conv stages both operands through shared memory: stores and loads of it are counted.
    expect(kernel('k1_conv_infer').counts.shared_load_wavefronts).toBeGreaterThan(0);
    expect(kernel('k1_conv_infer').counts.shared_store_wavefronts).toBeGreaterThan(0);
  });

  it('counts the small kernels too, as hand-worked: the loss and the BN finalize tree', () => {
    // nll loss, batch 4, 3 classes: thread 0 loads 4 labels and 4 log-probabilities one lane at a time (8
    // instructions of 1 sector); then lanes 0..11 of warp 0 load labels[e / 3] (16 bytes: 1 sector). It
    // stores the loss (1 sector) and the 12 floats of dlogp in one instruction (48 bytes from an
    // aligned buffer: 2 sectors).
    expect(kernel('k_nll_loss').counts.global_load_sectors).toBe(9);
    expect(kernel('k_nll_loss').counts.global_store_sectors).toBe(3);
    // Coalescing: the loads ask for 8 × 4 bytes one lane at a time, then 4 distinct labels (16 bytes): 48 bytes
    // in the 9 sectors they need, efficiency 48 / 288; the stores 4 + 48 bytes in their 3. Fully coalesced.
    expect(kernel('k_nll_loss').coalescing.load).toEqual({ requestedBytes: 48, sectors: 9, idealSectors: 9, efficiency: 48 / 288, excess: 0 });
    // Its one block stores those 3 sectors once each: no excess for the tile or the instructions.
    expect(kernel('k_nll_loss').coalescing.store).toEqual({ requestedBytes: 52, sectors: 3, idealSectors: 3, efficiency: 52 / 96, excess: 0, blockSectors: 3, tileExcess: 0, instructionExcess: 0 });
    // BN finalize (bn-finalize-columns.ts), 4 channels: one block of 8 channel lanes × 128 row lanes (32
    // warps; thread t = row·8 + lane stores slot t), two trees of doubles in shared memory, one per pass. A
    // store of 32 doubles is 2 phases of 16 lanes × 8 bytes on 32 banks: 2 wavefronts. Per tree: the first
    // stores, 32 warps × 2 = 64; the tree, s = 64, 32, 16, 8, 4 (rows < s: 16, 8, 4, 2, 1 warps) × 2 = 62,
    // then s = 2 (16 lanes) and s = 1 (8 lanes), one phase each. (64 + 62 + 2) × 2 = 256.
    expect(kernel('k2_bn_finalize').counts.shared_store_wavefronts).toBe(256);
    expect(kernel('k2_bn_finalize').counts.shared_bank_conflicts).toBe(0);
  });

  it('splits the kernels into the inference batch and the training step, each with its spec line and a prediction', () => {
    expect(json.batch).toBe(4);
    expect(json.gpu).toBe('H100 SXM5 80GB');
    expect(json.occupancyKnown).toBe(false);
    const infer = json.kernels.filter((k) => k.phase === 'infer').map((k) => k.kernel);
    expect(infer).toEqual(['k1_conv_infer', 'k5_linear_infer', 'k6_logsoftmax_fwd']);
    const train = json.kernels.filter((k) => k.phase === 'train').map((k) => k.kernel);
    expect(train).toContain('k1_conv_wgrad_fused');
    expect(train).toContain('k_sgd_update');
    expect(train).not.toContain('k1_fold_bn'); // folding runs once per weight change, not per batch
    expect(kernel('k1_conv_infer').source).toBe('tiny.model:3:3');
    for (const k of json.kernels) {
      expect(k.prediction.micros, k.kernel).toBeGreaterThan(0);
      expect(['fp32', 'tensor', 'shared', 'l2', 'hbm']).toContain(k.prediction.bound);
    }
    const sum = (phase: string) => json.kernels.filter((k) => k.phase === phase).reduce((s, k) => s + k.prediction.micros, 0);
    expect(json.inferMicros).toBeCloseTo(sum('infer'), 6);
    expect(json.trainMicros).toBeCloseTo(sum('train'), 6);
  });

  it('prints the table, the images/s and the error band; every block run gives the sampled counts of a tiled kernel exactly', () => {
    expect(text).toContain('tiny on A100 SXM4 80GB (predicted from emulator counters; every block run)');
    expect(text).toContain('occupancy: unknown (built without nvcc): one block per SM assumed');
    expect(text).toMatch(/^inference batch \(batch 4\): predicted [\d.]+ ms, [\d,]+ images\/s$/m);
    expect(text).toMatch(/^training step \(batch 4\): predicted [\d.]+ ms, [\d,]+ images\/s$/m);
    expect(text).toMatch(/^ {2}k1_conv_infer +262\.1k +0 .* (fp32|shared|l2|hbm) +[\d.]+ +tiny\.model:3:3$/m);
    // Every kernel's load and store efficiency, and the kernels below full coalescing listed under each table.
    expect(text).toMatch(/^ {2}kernel +FFMA +MMA +gld sect +gst sect +ld eff +st eff +smem wf/m);
    expect(text).toMatch(/^ {2}k_nll_loss( +\S+){4} +17% +54% /m);
    const below = json.kernels.filter((k) => k.phase === 'infer' && Math.max(k.coalescing.load.excess, k.coalescing.store.excess) > 0.01);
    expect(below.length).toBeGreaterThan(0);
    expect(text).toContain('  below full coalescing (sectors touched for the fewest the requested bytes need), most extra sectors first:');
    for (const k of below) expect(text, k.kernel).toMatch(new RegExp(`^ {4}${k.kernel}: (loads|stores) [\\d,]+ sectors for [\\d,]+ needed`, 'm'));
    expect(text).toContain('expected error: the pipe term is a lower bound');
  });

  it('says on stderr as each phase starts and how many launches it emulated, in how long', () => {
    const launches = (phase: string) => json.kernels.filter((k) => k.phase === phase).reduce((s, k) => s + k.launches, 0);
    expect(progress).toContain('profile: inference batch of 4…');
    expect(progress).toMatch(new RegExp(`^profile: inference batch of 4: ${launches('infer')} launches emulated in [\\d.]+ s$`, 'm'));
    expect(progress).toMatch(new RegExp(`^profile: training step of 4: ${launches('train')} launches emulated in [\\d.]+ s$`, 'm'));
    for (const k of json.kernels) expect(k.emulatedMillis, k.kernel).toBeGreaterThanOrEqual(0);
    expect(json.kernels.reduce((s, k) => s + k.emulatedMillis, 0)).toBeGreaterThan(0);
  });

  it('builds the spec without the cpu library, which it never runs: the plan lists the emu library only', () => {
    const plan = JSON.parse(readFileSync(join(work, 'build/tiny-emu/plan.json'), 'utf8')) as { libraries: Record<string, string> };
    expect(plan.libraries).toEqual({ emu: 'kernels.emu.so' });
    expect(existsSync(join(work, 'build/tiny-emu/kernels.cpu.so'))).toBe(false);
    expect(progress).toMatch(/^emu kernel library: (compiled|cache hit)$/m); // a hit where an earlier run filled the shared cache
    expect(progress).not.toMatch(/^kernel library: /m); // the cpu library's line (compiler/build.ts)
  });

  it("--write-report: report.txt's kernel table gets each kernel's prediction, naming the GPU, batch and error; a build's says how to get one", () => {
    const kernels = [...readFileSync(join(work, 'build/tiny-emu/kernels.cu'), 'utf8').matchAll(/NINCC_EXPORT\((\w+)\);/g)].map((m) => m[1]);
    const rows = (report: string) => {
      const lines = report.split('\n');
      const at = lines.findIndex((l) => l.startsWith('CUDA kernels: predicted time'));
      expect(at, report).toBeGreaterThan(0);
      const end = lines.findIndex((l, i) => i > at && l === '');
      return { note: lines[at + 1], rows: new Map(lines.slice(at + 2, end).map((l) => [l.slice(2).split(' | ')[0].trimEnd(), l.slice(2).split(' | ').slice(1)])) };
    };
    // The build: every kernel has a row with its tile or launch and its fused parts, and no number for its time.
    const before = rows(built);
    expect(before.note).toBe('  predicted: run `nincc profile DIR --gpu G --batch N --write-report`');
    expect([...before.rows.keys()].sort()).toEqual([...kernels].sort());
    for (const [kernel, [predicted]] of before.rows) expect(predicted.trim(), kernel).toBe('—');
    expect(before.rows.get('k1_conv_infer')!.slice(1)).toEqual(['32×32×16 tile (fp32 SIMT), 8 warps of 32×4 (4 outputs a thread), M = N·64, N = 4, K = 18', 'implicit-GEMM conv + bias + epilogue: ReLU']);
    expect(before.rows.get('k1_conv_wgrad_fused')![1]).toMatch(/^32×32×16 tile \(fp32 SIMT\), .*, M = 18, N = 4, K = N·64 in \d+ batch splits$/);
    expect(before.rows.get('k_sgd_update')![1]).toMatch(/^grid /); // a plain kernel: its launch
    expect(before.rows.get('k1_conv_wgrad_fused')![2]).toBe('implicit-GEMM wgrad (split over the batch) + prologue: dReLU + prologue: dBN + bias gradient');

    // After the a100 run at batch 4, every block run: each row's µs is that run's, rounded; the rest unchanged.
    const path = join(work, 'build/tiny-emu/predictions-a100-b4.json');
    expect(written).toContain(`profile: wrote ${join('build/tiny-emu', 'predictions-a100-b4.json')} and the predicted column of ${join('build/tiny-emu', 'report.txt')}`);
    expect(existsSync(path)).toBe(true);
    const saved = JSON.parse(readFileSync(path, 'utf8')) as ProfileReport & { sourceHash: string; precision: string; errorBand: string };
    expect(saved.gpu).toBe('A100 SXM4 80GB');
    expect(saved.precision).toBe('fp32');
    expect(saved.errorBand).toContain('expected error: the pipe term is a lower bound');
    const report = readFileSync(join(work, 'build/tiny-emu/report.txt'), 'utf8');
    const after = rows(report);
    expect(after.note).toMatch(/^ {2}predicted for A100 SXM4 80GB, batch 4, fp32, by `nincc profile` \(emulator counters, every block run; occupancy unknown .*expected error: the pipe term is a lower bound/);
    expect([...after.rows.keys()]).toEqual([...before.rows.keys()]);
    for (const k of saved.kernels) {
      const cell = `${k.prediction.micros.toFixed(1)} µs ${k.prediction.bound}${k.launches > 1 ? ` ×${k.launches}` : ''}${k.phase === 'infer' ? ' (infer)' : ''}`;
      expect(after.rows.get(k.kernel)![0], k.kernel).toContain(cell);
    }
    expect(after.rows.get('k1_fold_bn')![0].trim()).toBe('not in a profiled batch or step');
    for (const [kernel, cells] of after.rows) expect(cells.slice(1), kernel).toEqual(before.rows.get(kernel)!.slice(1));
    // Only the table changed.
    const outside = (r: string) => r.split('\n').filter((l) => !l.startsWith('  ') && !l.startsWith('CUDA kernels: predicted'));
    expect(outside(report)).toEqual(outside(built));
    expect(report.split('\n').length).toBe(built.split('\n').length);
  });

  it('refuses an unknown GPU and a batch below 1, naming them', () => {
    const gpu = nincc(['profile', spec, '--gpu', 'v100']);
    expect(gpu.code).toBe(2);
    expect(gpu.stderr).toContain("--gpu: unknown GPU 'v100': one of a100, h100, h200");
    const batch = nincc(['profile', spec, '--batch', '0']);
    expect(batch.code).toBe(2);
    expect(batch.stderr).toContain('--batch must be an integer of at least 1');
  });
});

describe("report.txt's kernel table (compiler/report/kernel-table.ts)", () => {
  const launch = { grid: [2, 1, 1] as const, block: [32, 8, 1] as const, shared: 0 };
  const report = ['Precision: bf16', '', ...kernelTable([{ name: 'k1_conv_infer', tile: '128×8×32 tile, 4 warps', fused: 'bias', launch }, { name: 'k_sgd_update', fused: '', launch }]), '', 'nvcc: …', ''].join('\n');

  it('rewrites only the predicted cells and the note; a kernel the report lacks, or a report without a table, is an error', () => {
    const p = { source: 'predicted for H100, batch 8', cells: new Map([['k1_conv_infer', '3.0 µs tensor (infer)']]) };
    const out = withPredictions(report, p).split('\n');
    expect(out.slice(2, 6)).toEqual([
      'CUDA kernels: predicted time | tile configuration (tensor-core kernels) or launch (grid × block) | fused parts',
      '  predicted for H100, batch 8',
      '  k1_conv_infer | 3.0 µs tensor (infer)    | 128×8×32 tile, 4 warps | bias',
      '  k_sgd_update  | not in a profiled batch or step | grid 2×1×1 × block 32×8×1 | nothing fused',
    ]);
    expect(out.slice(6)).toEqual(report.split('\n').slice(6));
    expect(() => withPredictions(report, { ...p, cells: new Map([['k9_other', '1 µs']]) })).toThrow("report.txt's kernel table has no row for k9_other: the report is not this artifact's");
    expect(() => withPredictions('Precision: fp32\n', p)).toThrow('report.txt has no per-kernel table');
  });
});
