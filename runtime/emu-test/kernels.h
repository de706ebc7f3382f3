// The test kernels (defined once in the .cu files beside this one) as the C++ driver sees them,
// for typed launches: nincc::emu::launch("name", grid, block, shared_bytes, kernel, args...).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "nincc/device/primitives.cuh"

// matmul.cu
NINCC_KERNEL void matmul_tiled16(const float* a, const float* b, float* c, int m, int n, int k);
NINCC_KERNEL void matmul_64x64(const float* a, const float* b, float* c, int m, int n, int k);
// reduce.cu
NINCC_KERNEL void block_partial_sums(const float* x, int n, int chunk, float* partials);
NINCC_KERNEL void sum_partials(const float* partials, int count, float* out);
// warp_ops.cu (warp_semantics writes kWarpResults ints per thread)
constexpr int kWarpResults = 12;
NINCC_KERNEL void warp_semantics(int* out, double* wide);
NINCC_KERNEL void mma_tf32_gemm(const float* a, const float* b, float* c, int m, int n, int k);
NINCC_KERNEL void round_tf32(const float* in, unsigned* out, int n);
NINCC_KERNEL void grid_coordinates(int* out);
// faults.cu
NINCC_KERNEL void early_exit_then_sync(float* out);
NINCC_KERNEL void exit_before_shuffle(float* out);
NINCC_KERNEL void barrier_or_shuffle(float* out);
NINCC_KERNEL void two_barrier_sites(float* out);
NINCC_KERNEL void shared_index_oob(float* out);
NINCC_KERNEL void shared_2d_oob(float* out);
NINCC_KERNEL void shared_float4_overrun(float* out);
NINCC_KERNEL void misaligned_float4(const float* x, float* out);
NINCC_KERNEL void missing_barrier(float* out);
NINCC_KERNEL void mma_unrounded(float* out);
// bf16_ops.cu
NINCC_KERNEL void round_bf16(const float* in, unsigned short* one, unsigned* pair, int n);
NINCC_KERNEL void mma_bf16_gemm(const unsigned short* a, const unsigned short* b, float* c, int m, int n, int k);
NINCC_KERNEL void ldmatrix_gather(const unsigned short* in, unsigned* out);
NINCC_KERNEL void ldmatrix_mma_loop(const unsigned short* a, const unsigned short* b, float* c, int k);
NINCC_KERNEL void cp_async_read_early(const float* in, float* out, int src_bytes);
NINCC_KERNEL void cp_async_never_waited(const float* in, float* out);
NINCC_KERNEL void ldmatrix_misaligned(unsigned* out);
NINCC_KERNEL void ldmatrix_out_of_bounds(unsigned* out);
// profile.cu (the micro-kernels whose counters test_profile.cc works out by hand)
NINCC_KERNEL void copy_coalesced(const float* in, float* out);
NINCC_KERNEL void copy_strided(const float* in, float* out, int stride);
NINCC_KERNEL void copy_offset(const float* in, float* out, int offset);
NINCC_KERNEL void stencil3(const float* in, float* out, int n);
NINCC_KERNEL void store_even_then_odd(float* out);
NINCC_KERNEL void transpose_unpadded(const float* in, float* out, int n);
NINCC_KERNEL void transpose_padded(const float* in, float* out, int n);
NINCC_KERNEL void sgemm_tiled16(const float* a, const float* b, float* c, int m, int n, int k);
// glue_fold_last_cta.cu
NINCC_KERNEL void glue_fold_channel_sums(const float* x, int rows, int channels, int rows_per_block, float* partials,
                                         unsigned* ticket, float* sums, int interrupt_block);
NINCC_KERNEL void glue_fold_count_threads(unsigned* count, int with_inc, int repeats);
NINCC_KERNEL void glue_fold_inc_sequence(unsigned* counter, unsigned limit, int steps, unsigned* olds);
NINCC_KERNEL void glue_fold_tile_splits(const float* x, int width, float* partials, unsigned* tickets, float* sums);
// bench.cu
NINCC_KERNEL void fill_index(float* out);
NINCC_KERNEL void barrier_rounds(int rounds, float* out);
NINCC_KERNEL void shuffle_rounds(int rounds, float* out);

namespace emu_test {
// Every way of scheduling a grid a test runs (test_kernels.cc); a correct kernel gives the same bits in each.
std::vector<std::pair<std::string, nincc::emu::LaunchOptions>> schedules();
void test_matmul();
void test_reduce();
void test_warp_semantics();
void test_coordinates();
void test_tf32();
void test_faults();
void test_bf16();
void test_profile();
void test_glue_fold();
void print_micro_kernel_counts();  // JSON lines, for bench/gpu/ncu.sh
void test_abi(const char* library_path);
void run_benchmarks();
}  // namespace emu_test
