// The CPU kernel library that generated per-model code (kernels.cpu.cc) includes: one header per
// kernel family, all header-only, in namespace nincc::cpu.
//
// Conventions shared by every kernel:
// - Layouts are Torch's: activations NCHW float32, conv weights out x in x kh x kw, linear
//   weights out x in, per-channel vectors. Shapes are small structs (Conv2dShape, Pool2dShape,
//   BatchNormShape, LinearShape) that generated code builds as constexpr constants.
// - Arguments go shape, inputs, outputs, then options. Outputs are overwritten, never
//   accumulated into, gradients of weights included; a nullable pointer says so where declared.
// - Parallel when built with -fopenmp, on the kernels' own thread pool (thread_pool.h) sized by
//   OpenMP's settings; serial and identical without it. A kernel called inside a parallel loop's
//   task runs serially on its thread.
// - Deterministic: no floating-point atomics, every sum in a fixed order, so two runs give the same bits, and
//   each output element is computed the same way whichever thread computes it, so the bits do
//   not depend on the thread count either (kernels-test checks 1, 2 and all threads).
// - Scratch (GEMM panels, im2col columns) is thread_local, grow-only, per calling thread
//   (parallel.h): no workspace argument, and no allocation once shapes have been seen.
// - NINCC_PROFILE set when `nincc build` generates the code times every kernel call (profile.h).
#pragma once

#include "activation.h"
#include "batchnorm.h"
#include "block_band.h"
#include "bn_pool_backward.h"
#include "channels.h"
#include "conv.h"
#include "conv_direct.h"
#include "conv_gemm.h"
#include "conv_winograd.h"
#include "conv_wgrad.h"
#include "dropout.h"
#include "gemm.h"
#include "linear.h"
#include "loss.h"
#include "lrn.h"
#include "pad.h"
#include "pointwise.h"
#include "pointwise_pair.h"
#include "pool.h"
#include "profile.h"
#include "sgd.h"
#include "u8_input.h"
