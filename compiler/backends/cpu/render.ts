// Pass: kernel steps → C++ calls of the CPU kernel library, formatted by the nunjucks template.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import nunjucks from 'nunjucks';
import { argIndex, type KernelStep, type Program } from '../../lower/program-ir.js';
import { BN_MOMENT_MIN_TILE_PIXELS, type BufferName, type ConvShape, type OpKind } from '../../lower/ops.js';
import { NINCC_VERSION, type Plan } from '../../emit/plan.js';
import { wgrad1x1Applies } from '../../schedule/cpu-train-wgrad-1x1.js';
import { wgradStemApplies } from '../../schedule/cpu-train-stem-wgrad.js';
import { choosePairRegion, pairMaxChannels } from '../../schedule/cpu-pointwise-pair-region.js';
import { blockConvs } from '../../schedule/cpu-block-bands.js';
import { type ConvAlgorithm, type ConvConsts, chooseConvAlgorithm, outputTileRows, chooseTrainingConvAlgorithm, deepestDirectDepth, outputPastL2Bytes, packedConvWeightsSize, packedWeightsFloatsOf, winogradKindCpp, winogradWeightsSize } from '../../schedule/cpu-conv-algorithm.js';
import { packageRoot } from '../../package-root.js';
import { dropoutSeedCpp } from '../dropout-seed.js';

const templateText = readFileSync(join(packageRoot(), 'compiler/backends/cpu/kernels.cpu.cc.njk'), 'utf8');
const env = new nunjucks.Environment(null, { autoescape: false, throwOnUndefined: true, trimBlocks: false });

/** A C++ double literal that reads back as the same double. */
export function cppDouble(v: number): string {
  const s = String(v);
  return /[.eE]/.test(s) ? s : `${s}.0`;
}

/**
 * The C++ expressions of a step's buffers and runtime scalars, each prefixed with its contract name
 * (compiler/lower/ops.ts) as a comment, so a reader of the generated call sees what each argument is.
 */
function argumentsOf(k: KernelStep) {
  // Any op's buffer name type-checks here; that it is this op's is checked when the kernel is generated.
  type Name = BufferName<OpKind>;
  const index = (name: Name) => {
    const i = argIndex(k, name);
    if (i < 0) throw new Error(`internal error: ${k.kernel} (${k.op}) has no buffer '${name}'`);
    return i;
  };
  return {
    /** A buffer the kernel reads. */
    cf: (name: Name) => `/*${name}=*/arg<const float>(a, ${index(name)})`,
    /** A buffer the kernel writes. */
    f: (name: Name) => `/*${name}=*/arg<float>(a, ${index(name)})`,
    /**
     * The uint8 images a stem conv reads (ops.ts u8Input), with their per-channel normalisation as
     * u8_input.h's U8Images; otherwise the float buffer as `cf`.
     */
    convInput: (c: { u8Mean?: readonly number[]; u8Std?: readonly number[] }) => {
      if (!c.u8Mean || !c.u8Std) return `/*x=*/arg<const float>(a, ${index('x')})`;
      const list = (xs: readonly number[]) => `std::array<double, ${xs.length}>{${xs.map(cppDouble).join(', ')}}`;
      return `U8Images{/*x=*/arg<const std::uint8_t>(a, ${index('x')}), /*mean=*/${list(c.u8Mean)}.data(), /*std=*/${list(c.u8Std)}.data()}`;
    },
    i32: (name: Name, mutable = false) => `/*${name}=*/arg<${mutable ? '' : 'const '}std::int32_t>(a, ${index(name)})`,
    /** An optional buffer (a bias) the kernel reads, or nullptr when the step has none. */
    optional: (name: Name, mutable = false) => (k.buffers[name] === undefined ? 'nullptr' : mutable ? `/*${name}=*/arg<float>(a, ${index(name)})` : `/*${name}=*/arg<const float>(a, ${index(name)})`),
    scalar: (name: string) => {
      const i = k.scalars.indexOf(name);
      if (i < 0) throw new Error(`internal error: ${k.kernel} (${k.op}) has no scalar '${name}'`);
      return `/*${name}=*/a->scalar[${i}]`;
    },
  };
}

const n = 'a->n';
const convShape = (c: ConvShape, batch = n) => `const Conv2dShape shape{${batch}, ${c.C}, ${c.H}, ${c.W}, ${c.K}, ${c.R}, ${c.S}, ${c.sh}, ${c.sw}, ${c.ph}, ${c.pw}};`;
/** A conv's shape for one image: what the header's constexpr choices (conv.h *_paths, wgrad_1x1_applies) read. */
const imageShape = (c: ConvShape) => `Conv2dShape{1, ${c.C}, ${c.H}, ${c.W}, ${c.K}, ${c.R}, ${c.S}, ${c.sh}, ${c.sw}, ${c.ph}, ${c.pw}}`;
/**
 * The template arguments that name, at compile time, the algorithms a call may take (the cpuNamedPaths ablation:
 * conv.h ConvPath, conv_winograd.h WinogradTransform), so that g++ compiles those alone; off, none (the run-time
 * dispatch over every algorithm, compiled in every library that calls it).
 */
const named = (on: boolean, args: string) => (on ? `<${args}>` : '');
/** A pool's shape; a ceil-mode one also checks at compile time that the kernel's output size is the compiler's. */
const poolShape = (c: ConvShape & { readonly ceil?: boolean }) =>
  c.ceil
    ? `const Pool2dShape shape{${n}, ${c.C}, ${c.H}, ${c.W}, ${c.R}, ${c.S}, ${c.sh}, ${c.sw}, ${c.ph}, ${c.pw}, true};\n  static_assert(Pool2dShape{1, ${c.C}, ${c.H}, ${c.W}, ${c.R}, ${c.S}, ${c.sh}, ${c.sw}, ${c.ph}, ${c.pw}, true}.out_plane() == ${c.P * c.Q}, "ceil-mode output size");`
    : `const Pool2dShape shape{${n}, ${c.C}, ${c.H}, ${c.W}, ${c.R}, ${c.S}, ${c.sh}, ${c.sw}, ${c.ph}, ${c.pw}};`;
const bnShape = (c: { C: number; HW: number }) => `const BatchNormShape shape{${n}, ${c.C}, ${c.HW}};`;
/** Where a training conv's gradient lies in a concat's (conv.h ConvGradientPlace). */
const gradientPlaceCpp = (c: { yTotal?: number; yOffset?: number }) => `ConvGradientPlace{/*total=*/${c.yTotal}, /*offset=*/${c.yOffset ?? 0}}`;
/** A training pool's output (and gradient) channels in a concat's output (pool.h PoolOutput), or nothing for its own. */
const poolOutputCpp = (c: { outTotal?: number; outOffset?: number }) => (c.outTotal !== undefined ? `, PoolOutput{/*total=*/${c.outTotal}, /*offset=*/${c.outOffset ?? 0}}` : '');
/** A training BN's output channels in a concat's output (batchnorm.h BatchNormOutput). */
const bnOutputCpp = (c: { outTotal?: number; outOffset?: number }) => `BatchNormOutput{/*total=*/${c.outTotal}, /*offset=*/${c.outOffset ?? 0}}`;
/** A training conv's per-tile BN sums over its arena buffer (bn_moments.h ConvMoments), `plane` pixels an image. */
const convMomentsCpp = (buffer: string, plane: number) => `ConvMoments::over(${buffer}, static_cast<std::int64_t>(${n}) * ${plane})`;
/** The generated call's check that ops.ts sized that buffer for the runtime's narrowest tiles. */
const momentTilesAssert = `static_assert(kBnMomentMinTilePixels == ${BN_MOMENT_MIN_TILE_PIXELS}, "compiler/lower/ops.ts BN_MOMENT_MIN_TILE_PIXELS");`;
const linearShape = (c: { in: number; out: number }) => `const LinearShape shape{${n}, ${c.in}, ${c.out}};`;
const lrnShape = (c: { C: number; HW: number; size: number; alpha: number; beta: number; k: number }) =>
  `const LrnShape shape{${n}, ${c.C}, ${c.HW}, ${c.size}, ${cppFloat(c.alpha)}, ${cppFloat(c.beta)}, ${cppFloat(c.k)}};`;
const padShape = (c: { C: number; H: number; W: number; P: number; Q: number; top: number; left: number }) =>
  `const ZeroPadShape shape{${n}, ${c.C}, ${c.H}, ${c.W}, ${c.P}, ${c.Q}, ${c.top}, ${c.left}};`;
const sliceShape = (c: { C: number; HW: number; total: number; offset: number }) => `const ChannelSlice shape{${n}, ${c.C}, ${c.total}, ${c.offset}, ${c.HW}};`;
/** A C++ float literal of the number (a spec's threshold or LRN coefficient, as float32 like Torch's float tensors). */
const cppFloat = (v: number) => `${cppDouble(v)}f`;
const countOf = (c: { count: number }) => `static_cast<std::int64_t>(${n}) * ${c.count}`;

/** The flags after a packed conv call's ConvOutput, up to the last one switched off (conv_gemm.h): the narrowTails ablation
 * (a short last pixel tile through all its lanes: tail_split), inPlacePointwise (a 1x1's tiles gathered at batch 1 too:
 * reads_in_place), spreadWeightPrefetch (the next weight panel prefetched in a sweep's last tile only: forward_tasks). */
function packedConvFlags(c: { R: number; S: number; wideTails?: boolean; gatheredPointwise?: boolean; lastTileWeightPrefetch?: boolean }): string[] {
  const gathered = c.gatheredPointwise === true && c.R === 1 && c.S === 1;
  return [`/*narrow_tails=*/${c.wideTails !== true}`, `/*in_place_pointwise=*/${!gathered}`, '/*spread_weight_prefetch=*/false'].slice(0, c.lastTileWeightPrefetch ? 3 : gathered ? 2 : c.wideTails ? 1 : 0);
}

/**
 * A folded conv's inference call through its packed algorithm(s) (conv_infer, and each conv of a block region): the
 * chosen one below the batch its large-batch algorithm or the pointwise GEMM takes over from, that one from there.
 * `o`: the ConvOutput argument or ''; `paths`: the implicit GEMM's named paths (`named`); `n`: the batch's expression.
 */
function packedConvCall(choice: ReturnType<typeof chooseConvAlgorithm>, c: ConvConsts & { winogradFullTiles?: boolean; wideTails?: boolean; gatheredPointwise?: boolean; lastTileWeightPrefetch?: boolean }, a: { n: string; x: string; rawX: string; w: string; b: string; y: string; relu: string; o: string; paths: string; gemm: boolean }, namedPaths: boolean): string[] {
  const flags = packedConvFlags(c);
  const tails = flags.length ? `${a.o || ', ConvOutput{}'}, ${flags.join(', ')}` : a.o;
  const winogradCall = (fn: string, kind: string, args: string) => (namedPaths ? `${fn}<${kind}>(${args});` : `${fn}(${kind}, ${args});`);
  // The conv through one algorithm, its packed weights `at` floats into w.
  const call = (algorithm: ConvAlgorithm, at: number) => {
    const w = at === 0 ? a.w : `${a.w} + ${at}`;
    return algorithm === 'implicit_gemm'
      ? `conv2d_forward${a.paths}(shape, ${a.x}, PackedConvWeights{${w}}, ${a.b}, ${a.y}, ${a.relu}${tails});`
      : winogradCall('conv2d_forward_winograd', winogradKindCpp(algorithm), `shape, ${a.rawX}, ${w}, ${a.b}, ${a.y}, ${a.relu}${c.winogradFullTiles ? `${a.o || ', ConvOutput{}'}, /*half_tiles=*/false` : a.o}`);
  };
  // A 1x1 conv whose output outgrows L2 from some batch: the GEMM itself, not the pointwise direct conv.
  const pointwiseGemm = a.gemm ? choice.pointwiseGemm : undefined;
  if (pointwiseGemm) {
    const gemm = `conv2d_forward_packed(shape, ${a.rawX}, ${a.w}, ${a.b}, ${a.y}, ${a.relu}${tails});`;
    const bound = `static_assert(conv_gemm_detail::kOutputPastL2Bytes == ${outputPastL2Bytes}, "cpu-conv-algorithm.ts outputPastL2Bytes"); static_assert(conv_gemm_detail::kMaxDepthBlock <= ${deepestDirectDepth}, "cpu-conv-algorithm.ts deepestDirectDepth");`;
    if (pointwiseGemm.fromBatch <= 1) return [bound, gemm];
    return [bound, `if (${a.n} < ${pointwiseGemm.fromBatch}) ${call(choice.algorithm, 0)}`, `else ${gemm}`];
  }
  if (!choice.large) return [call(choice.algorithm, 0)];
  return [`if (${a.n} < ${choice.large.fromBatch}) ${call(choice.algorithm, 0)}`, `else ${call(choice.large.algorithm, packedWeightsFloatsOf(choice.algorithm, c))}`];
}

/**
 * The block region's calls (schedule/cpu-block-bands.ts, block_band.h): each conv as a lambda of (shape, x, y) that
 * calls its packed algorithm as its own conv_infer would (the large-batch one, the pointwise GEMM, past their batch),
 * the pair as pointwise_pair_forward where the pair region takes it, the pool as maxpool_forward with its flags.
 */
function blockBandBody(k: KernelStep & { op: 'block_band_infer' }, namedPaths: boolean): string[] {
  const c = k.consts;
  const { cf, f } = argumentsOf(k);
  const { convs } = blockConvs(c);
  const lambda = (conv: ConvConsts, w: string, b: string) => {
    const lines = packedConvCall(chooseConvAlgorithm(conv), { ...conv, winogradFullTiles: c.winogradFullTiles, wideTails: c.wideTails, gatheredPointwise: c.gatheredPointwise, lastTileWeightPrefetch: c.lastTileWeightPrefetch }, { n: 'shape.batch', x: 'x', rawX: 'x', w, b, y: 'y', relu: 'true', o: '', paths: named(namedPaths, `packed_forward_paths(${imageShape({ ...conv, P: 0, Q: 0 })})`), gemm: true }, namedPaths);
    return `[&](const Conv2dShape& shape, const float* x, float* y) {\n    ${lines.join('\n    ')}\n  }`;
  };
  const [w0, b0, w1, b1, w2, b2] = [cf('w0'), cf('b0'), cf('w1'), cf('b1'), cf('w2'), cf('b2')];
  // The 1x1s as the pair region where it takes them (at any batch, as their own kernel would), else one after the other.
  const region = choosePairRegion(convs[1], convs[2], true).fuse;
  const pair = region
    ? [`const auto pair = [&](const Conv2dShape& shape, const float* x, float*, float* y) { pointwise_pair_forward(shape, x, ${w1}, ${b1}, ${w2}, ${b2}, y); };`]
    : [
        `const auto first = ${lambda(convs[1], w1, b1)};`,
        `const auto second = ${lambda(convs[2], w2, b2)};`,
        'const auto pair = [&](const Conv2dShape& shape, const float* x, float* middle, float* y) { first(shape, x, middle); second(shape, middle, y); };',
      ];
  const poolFlags = ['PoolOutput{}', `/*plain_max=*/${!c.ruledMax}`, '/*prefetch_rows=*/false'].slice(0, c.unfetchedRows ? 3 : c.ruledMax ? 2 : 0);
  return [
    `const Conv2dShape shape{${n}, ${c.C}, ${c.H}, ${c.W}, ${c.K}, ${c.R}, ${c.S}, ${c.sh}, ${c.sw}, ${c.ph}, ${c.pw}};`,
    `const Pool2dShape pool{${n}, ${c.K}, ${c.P}, ${c.Q}, ${c.mR}, ${c.mS}, ${c.msh}, ${c.msw}, ${c.mph}, ${c.mpw}};`,
    `const auto conv = ${lambda(convs[0], w0, b0)};`,
    ...pair,
    `const auto max_pool = [&](const Pool2dShape& shape, const float* x, float* y) { maxpool_forward(shape, x, y, nullptr${poolFlags.map((a) => `, ${a}`).join('')}); };`,
    `block_band_forward(shape, pool, /*row_tile=*/${outputTileRows(chooseConvAlgorithm(convs[0]).algorithm)}, ${cf('x')}, ${f('y')}, conv, pair, max_pool);`,
  ];
}

function body(k: KernelStep, namedPaths: boolean): string[] {
  const { cf, f, i32, optional, scalar, convInput } = argumentsOf(k);
  /** A Winograd function's call, its kind a template argument (conv_winograd.h WinogradTransform) or, without named paths, the first argument. */
  const winogradCall = (fn: string, kind: string, args: string) => (namedPaths ? `${fn}<${kind}>(${args});` : `${fn}(${kind}, ${args});`);
  const seed = dropoutSeedCpp('a->seed', k.layer);
  switch (k.op) {
    case 'conv_fwd':
    case 'conv_infer': {
      const c = k.consts;
      const choice = k.op === 'conv_infer' && k.consts.packed ? chooseConvAlgorithm(c) : undefined;
      // A block's conv: the shortcut its (inference) epilogue adds, the concat slice it writes (im2col.h ConvOutput).
      const residual = k.op === 'conv_infer' && k.consts.residual === true;
      // A training conv's per-tile BN sums (bn_moments.h ConvMoments over the buffer compiler/lower/ops.ts sizes).
      const moments = k.op === 'conv_fwd' && k.consts.bnMoments ? `, ${convMomentsCpp(f('bn_moments'), c.P * c.Q)}` : '';
      const o = residual || c.yTotal !== undefined || moments ? `, ConvOutput{${residual ? optional('r') : 'nullptr'}, ${c.yTotal ?? c.K}, ${c.yOffset ?? 0}${moments}}` : '';
      if (c.u8Mean && choice && choice.algorithm !== 'implicit_gemm') throw new Error(`internal error: ${k.kernel} reads uint8 images through ${choice.algorithm}, which only takes floats`);
      if (!choice) {
        // A training forward transforms its weights each call; an unfolded inference conv packs them per call.
        const training = k.op === 'conv_fwd' && !c.u8Mean ? chooseTrainingConvAlgorithm(c) : 'implicit_gemm';
        if (moments && training !== 'implicit_gemm') throw new Error(`internal error: ${k.kernel} records BN sums, which only the implicit GEMM's epilogue takes (lower/train.ts momentsTaker)`);
        if (training !== 'implicit_gemm') return [convShape(c), winogradCall('conv2d_forward_winograd_training', winogradKindCpp(training), `shape, ${cf('x')}, ${cf('w')}, ${optional('b')}, ${f('y')}, ${c.relu}${o}`)];
        return [convShape(c), ...(moments ? [momentTilesAssert] : []), `conv2d_forward(shape, ${convInput(c)}, ${cf('w')}, ${optional('b')}, ${f('y')}, ${c.relu}${o});`];
      }
      // A uint8 stem's call takes u8_input.h's overload, which has no paths, and no pointwise GEMM.
      const infer = k.op === 'conv_infer' ? k.consts : {};
      return [
        convShape(c),
        ...packedConvCall(choice, { ...c, ...infer }, { n, x: convInput(c), rawX: cf('x'), w: cf('w'), b: optional('b'), y: f('y'), relu: String(c.relu), o, paths: named(namedPaths && !c.u8Mean, `packed_forward_paths(${imageShape(c)})`), gemm: !c.u8Mean }, namedPaths),
      ];
    }
    case 'conv_bwd_data': {
      const slot = k.consts.yTotal !== undefined ? `, ${gradientPlaceCpp(k.consts)}` : '';
      const addend = k.consts.addend ? cf('g_add') : slot ? 'nullptr' : '';
      return [convShape(k.consts), `conv2d_backward_data${named(namedPaths, `data_gradient_paths(${imageShape(k.consts)})`)}(shape, ${cf('g')}, ${cf('w')}, ${f('dx')}${addend ? `, ${addend}` : ''}${slot});`];
    }
    case 'conv_bwd_weight': {
      const c = k.consts;
      const slot = c.yTotal !== undefined ? `, ${gradientPlaceCpp(c)}` : '';
      // The 1x1 and stem weight gradients' choices, as report.txt states them (cpu-train-wgrad-1x1.ts,
      // cpu-train-stem-wgrad.ts), checked against the header's.
      const shape = imageShape(c);
      const choice = `static_assert(wgrad_1x1_applies(${shape}) == ${wgrad1x1Applies(c)}, "cpu-train-wgrad-1x1.ts wgrad1x1Applies");`;
      const stemChoice = `static_assert(wgrad_stem_applies(${shape}) == ${wgradStemApplies(c)}, "cpu-train-stem-wgrad.ts wgradStemApplies");`;
      // The cpuWgradSpreadPrefetch ablation: the 1x1 form's prefetches in one burst per tile product (conv_wgrad_1x1.h).
      const spread = !(c.burstPrefetch && wgrad1x1Applies(c));
      // A uint8 stem's call takes u8_input.h's overload, which has no paths.
      const args = namedPaths && !c.u8Mean ? [String(spread), `weight_gradient_paths(${shape}, ${c.yTotal ?? 0})`] : spread ? [] : ['false'];
      return [convShape(c), choice, stemChoice, `conv2d_backward_weights${named(args.length > 0, args.join(', '))}(shape, ${convInput(c)}, ${cf('g')}, ${f('dw')}, ${optional('db', true)}${slot});`];
    }
    case 'fold_bn': {
      const c = k.consts;
      const fold = `fold_batchnorm(${c.K}, ${c.CRS}, ${cf('w')}, ${optional('bias')}, ${cf('gamma')}, ${cf('beta')}, ${cf('mean')}, ${cf('var')}, ${f('w_out')}, ${f('b_out')}, ${cppDouble(c.eps)});`;
      if (!c.packed) return [fold];
      const choice = chooseConvAlgorithm(c);
      // The packing reads the folded weights back: w_out, just written. A large-batch algorithm's packing follows the first's.
      const pack = (a: ConvAlgorithm, at: number) => {
        const to = at === 0 ? f('packed') : `${f('packed')} + ${at}`;
        if (a === 'implicit_gemm')
          return [
            `static_assert(packed_conv_weights_size(${c.K}, ${c.CRS}) == ${packedConvWeightsSize(c.K, c.CRS)}, "packed weight buffer size");`,
            `pack_conv_weights(shape, ${cf('w_out')}, ${to});`,
          ];
        const kind = winogradKindCpp(a);
        return [
          `static_assert(winograd_weights_size(${kind}, ${c.K}, ${c.C}) == ${winogradWeightsSize(a, c.K, c.C)}, "packed weight buffer size");`,
          winogradCall('pack_winograd_weights', kind, `shape, ${cf('w_out')}, ${to}`),
        ];
      };
      const [assertFirst, packFirst] = pack(choice.algorithm, 0);
      const large = choice.large ? pack(choice.large.algorithm, packedWeightsFloatsOf(choice.algorithm, c)) : [];
      return [fold, assertFirst, ...large.slice(0, 1), convShape(c, '1'), packFirst, ...large.slice(1)];
    }
    case 'bn_fwd_train': {
      const c = k.consts;
      // A residual block's add (and ReLU) after it; y's channels in a concat's output.
      const out = c.outTotal !== undefined ? `, ${bnOutputCpp(c)}` : '';
      const fromConv = c.convMoments ? `, ${convMomentsCpp(cf('moments'), c.HW)}` : '';
      const place = out || (fromConv ? ', BatchNormOutput{}' : '');
      const block = c.residual || c.relu || place ? `, ${c.relu === true}, ${optional('r')}${place}${fromConv}` : '';
      // The cpuBnOnePassStats ablation: the statistics' two passes (batchnorm.h channel_moments).
      const stats = c.twoPassStats ? '<false>' : '';
      return [bnShape(c), ...(fromConv ? [momentTilesAssert] : []), `batchnorm_forward_train${stats}(shape, ${cf('x')}, ${cf('gamma')}, ${cf('beta')}, ${f('y')}, ${f('save_mean')}, ${f('save_invstd')}, ${f('running_mean')}, ${f('running_var')}, ${cppDouble(c.eps)}, ${cppDouble(c.momentum)}${block});`];
    }
    case 'bn_bwd': {
      const c = k.consts;
      const tail = c.outTotal !== undefined ? `, ${c.relu ? cf('y') : 'nullptr'}, ${bnOutputCpp(c)}` : c.relu ? `, ${cf('y')}` : '';
      return [bnShape(c), `batchnorm_backward(shape, ${cf('x')}, ${cf('g')}, ${cf('gamma')}, ${cf('save_mean')}, ${cf('save_invstd')}, ${f('dx')}, ${f('dgamma')}, ${f('dbeta')}${tail});`];
    }
    case 'bn_relu_maxpool_bwd':
      // The pool's shape, and the BN's over its input planes (bn_pool_backward.h).
      return [poolShape(k.consts), 'const BatchNormShape bn{shape.batch, shape.channels, shape.in_plane()};', `batchnorm_relu_maxpool_backward(bn, shape, ${cf('x')}, ${cf('g')}, ${i32('argmax')}, ${cf('y')}, ${cf('gamma')}, ${cf('save_mean')}, ${cf('save_invstd')}, ${f('dx')}, ${f('dgamma')}, ${f('dbeta')});`];
    case 'bn_eval':
      return [bnShape(k.consts), `batchnorm_forward_eval(shape, ${cf('x')}, ${cf('gamma')}, ${cf('beta')}, ${cf('mean')}, ${cf('var')}, ${f('y')}, ${cppDouble(k.consts.eps)});`];
    case 'relu_fwd':
      return [`relu_forward(${countOf(k.consts)}, ${cf('x')}, ${f('y')});`];
    case 'relu_fwd_slice':
      return [sliceShape(k.consts), `relu_forward_into(shape, ${cf('x')}, ${f('y')});`];
    case 'relu_bwd_slice':
      return [sliceShape(k.consts), `relu_backward_from(shape, ${cf('y')}, ${cf('g')}, ${f('dx')});`];
    case 'tanh_fwd_slice':
      return [sliceShape(k.consts), `tanh_forward_into(shape, ${cf('x')}, ${f('y')});`];
    case 'tanh_bwd_slice':
      return [sliceShape(k.consts), `tanh_backward_from(shape, ${cf('y')}, ${cf('g')}, ${f('dx')});`];
    case 'relu_bwd':
      return [`relu_backward(${countOf(k.consts)}, ${cf('y')}, ${cf('g')}, ${f('dx')});`];
    case 'tanh_fwd':
      return [`tanh_forward(${countOf(k.consts)}, ${cf('x')}, ${f('y')});`];
    case 'tanh_bwd':
      return [`tanh_backward(${countOf(k.consts)}, ${cf('y')}, ${cf('g')}, ${f('dx')});`];
    case 'sigmoid_fwd':
      return [`sigmoid_forward(${countOf(k.consts)}, ${cf('x')}, ${f('y')});`];
    case 'sigmoid_bwd':
      return [`sigmoid_backward(${countOf(k.consts)}, ${cf('y')}, ${cf('g')}, ${f('dx')});`];
    case 'threshold_fwd':
      return [`threshold_forward(${countOf(k.consts)}, ${cf('x')}, ${f('y')}, ${cppFloat(k.consts.th)}, ${cppFloat(k.consts.v)});`];
    case 'threshold_bwd':
      return [`threshold_backward(${countOf(k.consts)}, ${cf('x')}, ${cf('g')}, ${f('dx')}, ${cppFloat(k.consts.th)});`];
    case 'lrn_fwd':
      return [lrnShape(k.consts), `lrn_forward(shape, ${cf('x')}, ${f('y')}, ${f('scale')});`];
    case 'lrn_bwd':
      return [lrnShape(k.consts), `lrn_backward(shape, ${cf('x')}, ${cf('y')}, ${cf('scale')}, ${cf('g')}, ${f('dx')});`];
    case 'zeropad_fwd':
      return [padShape(k.consts), `zeropad_forward(shape, ${cf('x')}, ${f('y')});`];
    case 'zeropad_bwd':
      return [padShape(k.consts), `zeropad_backward(shape, ${cf('g')}, ${f('dx')});`];
    case 'add':
    case 'add_infer':
      return [`add_forward(${countOf(k.consts)}, ${cf('a')}, ${cf('b')}, ${f('y')}, ${k.consts.relu});`];
    case 'concat_place':
      return [sliceShape(k.consts), `channels_place(shape, ${cf('x')}, ${f('y')});`];
    case 'concat_take':
      return [sliceShape(k.consts), `channels_take(shape, ${cf('g')}, ${f('dx')});`];
    case 'maxpool_fwd':
      return [poolShape(k.consts), `maxpool_forward(shape, ${cf('x')}, ${f('y')}, ${i32('argmax', true)}${poolOutputCpp(k.consts)});`];
    case 'block_band_infer':
      return blockBandBody(k, namedPaths);
    case 'pointwise_pair_infer': {
      // Two folded 1x1 convs as one banded region (schedule/cpu-pointwise-pair-region.ts).
      const c = k.consts;
      return [
        `static_assert(conv_gemm_detail::kMaxDepthBlock >= ${pairMaxChannels}, "cpu-pointwise-pair-region.ts pairMaxChannels");`,
        `pointwise_pair_forward(Conv2dShape{${n}, ${c.C}, ${c.H}, ${c.W}, ${c.K}, 1, 1, 1, 1, 0, 0}, ${cf('x')}, ${cf('w1')}, ${cf('b1')}, ${cf('w2')}, ${cf('b2')}, ${f('y')});`,
      ];
    }
    case 'maxpool_fwd_infer': {
      // The cpuPlainMaxPool ablation: Torch's NaN rule at every step (pool.h plane_max_in_registers); the poolRowPrefetch
      // ablation: no row prefetches (pool.h plane_max_two_pass). Flags up to the last one switched off.
      const flags = ['PoolOutput{}', `/*plain_max=*/${!k.consts.ruledMax}`, '/*prefetch_rows=*/false'].slice(0, k.consts.unfetchedRows ? 3 : k.consts.ruledMax ? 2 : 0);
      return [poolShape(k.consts), `maxpool_forward(shape, ${cf('x')}, ${f('y')}, nullptr${flags.map((a) => `, ${a}`).join('')});`];
    }
    case 'maxpool_bwd':
      return [poolShape(k.consts), `maxpool_backward(shape, ${cf('g')}, ${i32('argmax')}, ${f('dx')}${poolOutputCpp(k.consts)});`];
    case 'avgpool_fwd':
      return [poolShape(k.consts), `avgpool_forward(shape, ${cf('x')}, ${f('y')}${poolOutputCpp(k.consts)});`];
    case 'avgpool_bwd':
      return [poolShape(k.consts), `avgpool_backward(shape, ${cf('g')}, ${f('dx')}${poolOutputCpp(k.consts)});`];
    case 'linear_fwd':
    case 'linear_infer':
      return [linearShape(k.consts), `linear_forward(shape, ${cf('x')}, ${cf('w')}, ${optional('b')}, ${f('y')}, ${k.consts.relu});`];
    case 'linear_bwd_data':
      return [linearShape(k.consts), `linear_backward_data(shape, ${cf('g')}, ${cf('w')}, ${f('dx')});`];
    case 'linear_bwd_weight':
      return [linearShape(k.consts), `linear_backward_weights(shape, ${cf('x')}, ${cf('g')}, ${f('dw')}, ${optional('db', true)});`];
    case 'logsoftmax_fwd':
      return [`log_softmax_forward(${n}, ${k.consts.classes}, ${cf('x')}, ${f('y')});`];
    case 'logsoftmax_bwd':
      return [`log_softmax_backward(${n}, ${k.consts.classes}, ${cf('y')}, ${cf('g')}, ${f('dx')});`];
    case 'softmax_fwd':
      return [`softmax_forward(${n}, ${k.consts.classes}, ${cf('x')}, ${f('y')});`];
    case 'softmax_bwd':
      return [`softmax_backward(${n}, ${k.consts.classes}, ${cf('y')}, ${cf('g')}, ${f('dx')});`];
    case 'dropout_fwd':
      return [`dropout_forward(${countOf(k.consts)}, ${cf('x')}, ${f('y')}, ${cppDouble(k.consts.p)}f, ${seed});`];
    case 'dropout_bwd':
      return [`dropout_backward(${countOf(k.consts)}, ${cf('g')}, ${f('dx')}, ${cppDouble(k.consts.p)}f, ${seed});`];
    case 'nll_loss': {
      const classes = k.consts.classes;
      return [`nll_loss_forward(${n}, ${classes}, ${cf('logp')}, ${i32('labels')}, ${f('loss')});`, `nll_loss_backward(${n}, ${classes}, ${i32('labels')}, ${f('dlogp')});`];
    }
    case 'sgd_update': {
      const float = (name: string) => `static_cast<float>(${scalar(name)})`;
      return [
        '// scalars: lr, weight decay, momentum, first (the momentum buffer starts as the gradient)',
        `sgd_update(${k.consts.count}, ${f('w')}, ${f('g')}, ${f('mom')}, ${float('lr')}, ${float('wd')}, ${float('momentum')}, ${scalar('first')} != 0.0);`,
      ];
    }
    case 'conv_weight_bf16':
      // A cuda/emu build's prepare program writes it for the bf16 tensor-core conv_infer (lower/infer.ts); the cpu conv reads its packed fp32 weights.
      return ['(void)a;  // nothing on the cpu reads the bf16 copy'];
    default:
      // The fused ops belong to the cuda/emu training program; build.ts never hands them to this generator.
      throw new Error(`internal error: the cpu code generator has no kernel for ${k.op} (${k.kernel})`);
  }
}

export interface CpuSource {
  readonly text: string;
  readonly kernels: readonly string[];
}

/**
 * NINCC_PROFILE=1 when the library is built wraps every kernel in a timer that prints a per-kernel
 * table when the library unloads (runtime/include/nincc/cpu/profile.h). The generated source then
 * differs, so the compiled library is cached apart; build into a fresh directory to profile.
 */
const profiling = () => Boolean(process.env.NINCC_PROFILE);

/** What the kernel table records of each kernel: the buffers (space, elements) its steps pass, and its scalar count. */
interface KernelSignature {
  readonly args: readonly { readonly space: string; readonly size: number }[];
  readonly scalars: number;
}

/** The signature of every kernel the emitted plan's steps call; one kernel always gets the same buffers' sizes. */
function kernelSignatures(plan: Plan): Map<string, KernelSignature> {
  const out = new Map<string, KernelSignature>();
  for (const step of Object.values(plan.programs).flatMap((p) => p.steps)) {
    const signature = { args: step.args.map((a) => ({ space: a.space, size: a.size })), scalars: step.scalars.length };
    const seen = out.get(step.kernel);
    if (seen && JSON.stringify(seen) !== JSON.stringify(signature)) throw new Error(`internal error: kernel ${step.kernel} is called with two different signatures`);
    out.set(step.kernel, signature);
  }
  return out;
}

/** `namedPaths`: the calls name their algorithms at compile time (the cpuNamedPaths ablation, on by default). */
export function generateCpuSource(programs: readonly Program[], plan: Plan, info: { model: string; file: string; sourceHash: string }, namedPaths = true): CpuSource {
  const signatures = kernelSignatures(plan);
  const unique = new Map<string, KernelStep>();
  for (const step of programs.flatMap((p) => p.steps)) {
    const seen = unique.get(step.kernel);
    if (seen && JSON.stringify([seen.op, seen.consts]) !== JSON.stringify([step.op, step.consts])) {
      throw new Error(`internal error: kernel ${step.kernel} is used with two different meanings`);
    }
    unique.set(step.kernel, step);
  }
  const kernels = [...unique.values()].map((k) => {
    const signature = signatures.get(k.kernel);
    if (!signature) throw new Error(`internal error: kernel ${k.kernel} is in no step of the plan`);
    return { name: k.kernel, comment: k.comment, body: body(k, namedPaths), signature };
  });
  const text = env.renderString(templateText, { ...info, version: NINCC_VERSION, kernels, profile: profiling() });
  return { text, kernels: kernels.map((k) => k.name) };
}
