// The per-layer configuration record (compiler/tune/tune-record.ts): tune.json's verifier (errors naming the file
// and field), the choices applied per kernel by the cuda back end (compiled, no build), the chooser's winners
// (compiler/tune/tune-choose.ts) and report.txt's per-kernel section. `nincc tune --predict` and the reuse by a
// later build are test/tune-command.test.ts (NINCC_TEST_FULL=1).
import { describe, expect, it } from 'vitest';
import { compileModel, compileSpec, type Compiled } from '../compiler/pipeline.js';
import type { ShapedModel } from '../compiler/ir.js';
import { choicesFor, convLayers, kernelAblations, modelHash, parseTuneFile, type TunedChoices } from '../compiler/tune/tune-record.js';
import { chooseConfigurations } from '../compiler/tune/tune-choose.js';
import { tuneReport } from '../compiler/tune/tune-report.js';

const SPEC = `model tuned {
  input 16x8x8
  conv(16, 48, 3, 3, 1, 1, 1, 1)  bn(48)  relu
  conv(48, 32, 3, 3, 1, 1, 1, 1)  bn(32)  relu
  view(-1)  linear(2048, 3)  logsoftmax
}`;

function model(): ShapedModel {
  const r = compileSpec(SPEC, 'tuned.model', { device: 'emu' });
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join('; '));
  return r.model;
}

const compile = (m: ShapedModel, extra: { tuned?: TunedChoices; ablations?: { stagedStores: false } } = {}): Compiled =>
  compileModel(m, { target: 'emu', maxBatch: 4, sourceHash: 'test', libraries: {}, cpuFeatures: [], precision: 'bf16', ...extra });

const HASH = 'a'.repeat(64);
const file = (layers: unknown, extra: Record<string, unknown> = {}) => JSON.stringify({ format: 'nincc-tune', version: 1, gpus: { h100: { how: 'predicted', modelHash: HASH, layers, ...extra } } });

describe('tune.json: the verifier', () => {
  it('reads a good record', () => {
    const t = parseTuneFile(file({ '4:wgrad': { twinHalo: false, warp64Tiles: true }, '1:forward': { stagedStores: false } }), 'a/tune.json');
    expect(t.gpus.h100.layers['4:wgrad']).toEqual({ twinHalo: false, warp64Tiles: true });
  });

  it.each([
    ['not JSON', '{', /^a\/tune\.json: not JSON/],
    ['a wrong format', JSON.stringify({ format: 'x', version: 1, gpus: {} }), /^a\/tune\.json: format: expected "nincc-tune"/],
    ['a wrong version', JSON.stringify({ format: 'nincc-tune', version: 2, gpus: {} }), /^a\/tune\.json: version: expected 1, got 2/],
    ['an unknown knob', file({ '1:forward': { fastMode: false } }), /^a\/tune\.json: gpus\.h100\.layers\["1:forward"\]\.fastMode: unknown knob \(known: stagedStores, stagedFp32Stores, warp64Tiles, twinHalo, stemS2d\)/],
    ['a knob on a pass it does not reach', file({ '1:forward': { twinHalo: false } }), /gpus\.h100\.layers\["1:forward"\]\.twinHalo: the knob applies to the wgrad pass, not forward/],
    ['a value not boolean', file({ '1:dgrad': { stagedStores: 'off' } }), /gpus\.h100\.layers\["1:dgrad"\]\.stagedStores: expected true or false, got "off"/],
    ['an unknown pass', file({ '1:backward': {} }), /gpus\.h100\.layers\["1:backward"\]: expected a key LAYER:PASS, PASS one of forward, dgrad, wgrad/],
    ['a layer 0', file({ '0:forward': {} }), /gpus\.h100\.layers\["0:forward"\]: expected a key LAYER:PASS/],
    ['an unknown how', file({}, { how: 'guessed' }), /gpus\.h100\.how: expected "timed" or "predicted", got "guessed"/],
    ['a bad model hash', file({}, { modelHash: 'abc' }), /gpus\.h100\.modelHash: expected a SHA-256 in hex/],
  ])('refuses %s, naming the file and the field', (_what, text, message) => {
    expect(() => parseTuneFile(text, 'a/tune.json')).toThrow(message);
  });

  it('checks the record against the model: its hash, its conv layers, the GPU entry', () => {
    const m = model();
    const hash = modelHash(m, 4, 'bf16');
    const good = parseTuneFile(file({ '4:dgrad': { stagedStores: false } }, { modelHash: hash }), 't.json');
    expect(choicesFor(good, 't.json', undefined, hash, convLayers(m)).layers).toEqual({ '4:dgrad': { stagedStores: false } });
    expect(() => choicesFor(good, 't.json', 'a100', hash, convLayers(m))).toThrow(/^t\.json: gpus: no entry for a100 \(it has h100\)/);
    expect(() => choicesFor(good, 't.json', 'h100', modelHash(m, 8, 'bf16'), convLayers(m))).toThrow(/^t\.json: gpus\.h100\.modelHash: tuned for another model, batch or precision/);
    const notConv = parseTuneFile(file({ '3:forward': { stagedStores: false } }, { modelHash: hash }), 't.json');
    expect(() => choicesFor(notConv, 't.json', 'h100', hash, convLayers(m))).toThrow(/^t\.json: gpus\.h100\.layers\["3:forward"\]: layer 3 is not a conv of this model \(its convs: 1, 4\)/);
    // Where the spec was written does not matter; what it says does.
    expect(modelHash({ ...m, file: 'elsewhere.model' }, 4, 'bf16')).toBe(hash);
  });
});

describe('the choices in the cuda back end (compiled, no build)', () => {
  it('a layer-pass choice changes that layer-pass\'s kernels only, to what the global switch makes of them', () => {
    const m = model();
    // Staged stores reach layer 1's training forward (its bf16 y feeds conv 4) and layer 4's data gradient (its bf16 dX feeds BN 2).
    const tuned: TunedChoices = { gpu: 'h100', how: 'predicted', layers: { '1:forward': { stagedStores: false } } };
    const byName = (c: Compiled) => new Map((c.cuda?.kernels ?? []).map((k) => [k.name, JSON.stringify([k.body, k.launch])]));
    const base = byName(compile(m)), one = byName(compile(m, { tuned })), all = byName(compile(m, { ablations: { stagedStores: false } }));
    const changed = [...one].filter(([name, text]) => base.get(name) !== text).map(([name]) => name).sort();
    expect(changed).toEqual(['k1_conv_fwd_fused']);
    expect([...all].filter(([name, text]) => base.get(name) !== text).map(([name]) => name).sort()).toEqual(['k1_conv_fwd_fused', 'k4_conv_dgrad_fused']);
    for (const name of changed) expect(one.get(name), name).toBe(all.get(name));
    // The opposite direction: a choice turns a knob back on over the build's switch.
    const back = byName(compile(m, { ablations: { stagedStores: false }, tuned: { ...tuned, layers: { '1:dgrad': { stagedStores: true } } } }));
    expect([...back].filter(([name, text]) => all.get(name) !== text).map(([name]) => name)).toEqual([]); // the first conv has no data gradient
    const on = byName(compile(m, { ablations: { stagedStores: false }, tuned: { ...tuned, layers: { '4:dgrad': { stagedStores: true } } } }));
    expect([...on].filter(([name, text]) => all.get(name) !== text).map(([name]) => name)).toEqual(['k4_conv_dgrad_fused']);
    expect(on.get('k4_conv_dgrad_fused')).toBe(base.get('k4_conv_dgrad_fused'));
  });

  it('kernelAblations leaves kernels the record does not name at the build\'s switches', () => {
    const step = compile(model()).lowered.programs.flatMap((p) => p.steps).find((s) => s.kernel === 'k1_conv_fwd_fused')!;
    const global = { wideTiles: false } as const;
    expect(kernelAblations(global, { gpu: 'h100', how: 'timed', layers: { '4:forward': { stagedStores: false } } }, step)).toBe(global);
    expect(kernelAblations(global, { gpu: 'h100', how: 'timed', layers: { '1:forward': { stagedStores: false } } }, step)).toEqual({ wideTiles: false, stagedStores: false });
  });

  it('report.txt says per conv kernel whether its configuration was predicted, timed or default', () => {
    const c = compile(model());
    const lines = tuneReport(c.lowered.programs, { gpu: 'h100', how: 'predicted', layers: { '4:forward': { stagedStores: false } } });
    expect(lines[0]).toMatch(/^Per-layer configurations \(tune\.json for h100; predicted/);
    expect(lines).toContain(`  ${'k4_conv_fwd_fused'.padEnd(28)} predicted: stagedStores off`);
    expect(lines).toContain(`  ${'k1_conv_fwd_fused'.padEnd(28)} default`);
    expect(tuneReport(c.lowered.programs, { gpu: 'h100', how: 'timed', layers: { '1:forward': {} } }).find((l) => l.includes('k1_conv_infer'))).toMatch(/tuned: the defaults$/);
    expect(tuneReport(c.lowered.programs, undefined)[0]).toMatch(/default for every kernel/);
  });
});

describe('the chooser', () => {
  it('keeps a knob\'s default unless its variant is faster on that layer-pass\'s kernels; a knob that changed nothing stays out', () => {
    const keys = new Map([['k1_fwd', '1:forward'], ['k1_infer', '1:forward'], ['k4_fwd', '4:forward'], ['k4_wgrad', '4:wgrad']]);
    const baseline = new Map([['k1_fwd', 10], ['k1_infer', 5], ['k4_fwd', 20], ['k4_wgrad', 240]]);
    const rows = chooseConfigurations({
      keys,
      baseline,
      variants: new Map([
        ['stagedStores', new Map([['k1_fwd', 9], ['k1_infer', 7], ['k4_fwd', 18], ['k4_wgrad', 240]])], // layer 1: 16 > 15 loses; layer 4 wins
        ['twinHalo', new Map([['k1_fwd', 10], ['k1_infer', 5], ['k4_fwd', 20], ['k4_wgrad', 204]])], // the wgrad only
      ]),
      margin: 0,
    });
    expect(rows.map((r) => [r.key, r.choice])).toEqual([
      ['1:forward', { stagedStores: true }],
      ['4:forward', { stagedStores: false }],
      ['4:wgrad', { twinHalo: false }],
    ]);
    expect(rows[0]).toMatchObject({ kernels: ['k1_fwd', 'k1_infer'], baseline: 15, variants: { stagedStores: 16 } });
    // A margin keeps the default where the gain is within it.
    expect(chooseConfigurations({ keys, baseline, variants: new Map([['stagedStores', new Map([['k4_fwd', 19.9]])]]), margin: 0.02 }).find((r) => r.key === '4:forward')?.choice).toEqual({ stagedStores: true });
  });
});
