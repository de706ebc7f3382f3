// The element <-> (lane, register) maps of mma.sync.aligned.m16n8k8 with .tf32 operands (PTX ISA,
// "Matrix Fragments for mma.m16n8k8"): which element of A (16×8, row-major), B (8×8, k×n) and
// C/D (16×8) each lane of the warp holds in each of its fragment registers. Kernels load and
// store fragments with them; the emulator gathers by their inverses. Include primitives.cuh.
#pragma once

namespace nincc {
namespace m16n8k8 {

// With group = lane / 4 and t = lane % 4:
//   A: a0 = A[group][t]      a1 = A[group + 8][t]      a2 = A[group][t + 4]  a3 = A[group + 8][t + 4]
//   B: b0 = B[t][group]      b1 = B[t + 4][group]
//   C: c0 = C[group][2t]     c1 = C[group][2t + 1]     c2 = C[group + 8][2t] c3 = C[group + 8][2t + 1]
NINCC_HOST_DEVICE constexpr int a_row(int lane, int reg) { return lane / 4 + 8 * (reg % 2); }
NINCC_HOST_DEVICE constexpr int a_col(int lane, int reg) { return lane % 4 + 4 * (reg / 2); }
NINCC_HOST_DEVICE constexpr int b_row(int lane, int reg) { return lane % 4 + 4 * reg; }
NINCC_HOST_DEVICE constexpr int b_col(int lane, int /*reg*/) { return lane / 4; }
NINCC_HOST_DEVICE constexpr int c_row(int lane, int reg) { return lane / 4 + 8 * (reg / 2); }
NINCC_HOST_DEVICE constexpr int c_col(int lane, int reg) { return 2 * (lane % 4) + reg % 2; }

// Who holds A[row][k] and B[k][col].
NINCC_HOST_DEVICE constexpr int a_lane(int row, int k) { return 4 * (row % 8) + k % 4; }
NINCC_HOST_DEVICE constexpr int a_reg(int row, int k) { return row / 8 + 2 * (k / 4); }
NINCC_HOST_DEVICE constexpr int b_lane(int k, int col) { return 4 * col + k % 4; }
NINCC_HOST_DEVICE constexpr int b_reg(int k, int /*col*/) { return k / 4; }

// Every element is held exactly once, and the inverses invert: checked by the compiler.
NINCC_HOST_DEVICE constexpr bool maps_are_consistent() {
  for (int lane = 0; lane < 32; ++lane) {
    for (int reg = 0; reg < 4; ++reg) {
      const int r = a_row(lane, reg), k = a_col(lane, reg);
      if (a_lane(r, k) != lane || a_reg(r, k) != reg) return false;
    }
    for (int reg = 0; reg < 2; ++reg) {
      const int k = b_row(lane, reg), n = b_col(lane, reg);
      if (b_lane(k, n) != lane || b_reg(k, n) != reg) return false;
    }
  }
  return true;
}
static_assert(maps_are_consistent(), "m16n8k8 fragment maps and their inverses disagree");

}  // namespace m16n8k8
}  // namespace nincc
