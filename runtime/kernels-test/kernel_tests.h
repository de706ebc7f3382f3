// The test groups of the kernel test program, one per kernel family; kernels_test.cc runs them.
#pragma once

namespace kernels_test {

void test_gemm();
void test_conv();
void test_conv_gemm();
void test_conv_direct();
void test_conv_winograd();
void test_batchnorm();
void test_pool();
void test_linear_activation_loss();
void test_dropout_sgd();
void test_determinism();
void test_thread_pool();
void test_u8_stem();
void test_pointwise_pair();
void test_block_band();

}  // namespace kernels_test
