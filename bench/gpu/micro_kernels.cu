// The profile micro-kernels on a GPU, for Nsight Compute (bench/gpu/ncu.sh): launches the kernels of
// runtime/emu-test/profile.cu and bf16_ops.cu with exactly the shapes, in exactly the order, of
// runtime/emu-test/test_profile.cc's micro_cases(), whose counts the emulator takes by hand-checked
// rules — so ncu's counters for launch i compare with `emu_test --counts` line i.
//   nvcc -std=c++17 -O3 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90
//        -I runtime/include bench/gpu/micro_kernels.cu -o micro_kernels
#include <cstdio>
#include <cstdlib>

#include "../../runtime/emu-test/bf16_ops.cu"
#include "../../runtime/emu-test/profile.cu"

#define CHECK_CUDA(call)                                                                   \
  do {                                                                                     \
    const cudaError_t e = (call);                                                          \
    if (e != cudaSuccess) {                                                                \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e)); \
      std::exit(1);                                                                        \
    }                                                                                      \
  } while (0)

template <class T>
T* zeros(size_t n) {
  T* p = nullptr;
  CHECK_CUDA(cudaMalloc(&p, n * sizeof(T)));  // cudaMalloc aligns to 256 bytes: sectors as in the test
  CHECK_CUDA(cudaMemset(p, 0, n * sizeof(T)));
  return p;
}

int main() {
  float* in = zeros<float>(1024 * 8);
  float* out = zeros<float>(4096);
  float* big = zeros<float>(4096);
  copy_coalesced<<<16, 256>>>(big, out);
  copy_strided<<<4, 256>>>(in, out, 2);
  copy_strided<<<4, 256>>>(in, out, 8);
  copy_offset<<<4, 256>>>(in, out, 1);
  transpose_unpadded<<<dim3(2, 2), dim3(32, 8)>>>(big, out, 64);
  transpose_padded<<<dim3(2, 2), dim3(32, 8)>>>(big, out, 64);
  float* a = zeros<float>(32 * 32);
  float* b = zeros<float>(32 * 32);
  sgemm_tiled16<<<dim3(2, 2), dim3(16, 16)>>>(a, b, out, 32, 32, 32);
  unsigned short* ha = zeros<unsigned short>(16 * 64);
  unsigned short* hb = zeros<unsigned short>(64 * 8);
  ldmatrix_mma_loop<<<1, 32>>>(ha, hb, out, 64);
  CHECK_CUDA(cudaGetLastError());
  CHECK_CUDA(cudaDeviceSynchronize());
  std::printf("micro_kernels: 8 launches done\n");
  return 0;
}
