// The element <-> (lane, register, half) maps of mma.sync.aligned.m16n8k16 with .bf16 operands and
// of ldmatrix.m8n8.b16 (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type" and
// "Warp-level matrix load instruction: ldmatrix"). A and B registers hold two bf16 each, the lower
// element index in the low half. Include primitives.cuh.
#pragma once

namespace nincc {
namespace m16n8k16 {

// With group = lane / 4 and t = lane % 4, element i (0..7) of A sits in register i / 2, half i % 2:
//   A (16×16, row-major): row = group + 8·((i / 2) % 2), col = 2t + i % 2 + 8·(i / 4)
//   B (16×8, k×n):        element i (0..3) in register i / 2, half i % 2: k = 2t + i % 2 + 8·(i / 2), n = group
//   C/D (16×8, fp32):     as m16n8k8: c_i at row = group + 8·(i / 2), col = 2t + i % 2
NINCC_HOST_DEVICE constexpr int a_row(int lane, int reg) { return lane / 4 + 8 * (reg % 2); }
NINCC_HOST_DEVICE constexpr int a_col(int lane, int reg, int half) { return 2 * (lane % 4) + half + 8 * (reg / 2); }
NINCC_HOST_DEVICE constexpr int b_row(int lane, int reg, int half) { return 2 * (lane % 4) + half + 8 * reg; }
NINCC_HOST_DEVICE constexpr int b_col(int lane, int /*reg*/) { return lane / 4; }
NINCC_HOST_DEVICE constexpr int c_row(int lane, int reg) { return lane / 4 + 8 * (reg / 2); }
NINCC_HOST_DEVICE constexpr int c_col(int lane, int reg) { return 2 * (lane % 4) + reg % 2; }

// Who holds A[row][k] and B[k][col], and in which half.
NINCC_HOST_DEVICE constexpr int a_lane(int row, int k) { return 4 * (row % 8) + (k % 8) / 2; }
NINCC_HOST_DEVICE constexpr int a_reg(int row, int k) { return row / 8 + 2 * (k / 8); }
NINCC_HOST_DEVICE constexpr int b_lane(int k, int col) { return 4 * col + (k % 8) / 2; }
NINCC_HOST_DEVICE constexpr int b_reg(int k, int /*col*/) { return k / 8; }
NINCC_HOST_DEVICE constexpr int half_of(int k) { return k % 2; }

NINCC_HOST_DEVICE constexpr bool maps_are_consistent() {
  for (int lane = 0; lane < 32; ++lane)
    for (int half = 0; half < 2; ++half) {
      for (int reg = 0; reg < 4; ++reg) {
        const int r = a_row(lane, reg), k = a_col(lane, reg, half);
        if (a_lane(r, k) != lane || a_reg(r, k) != reg || half_of(k) != half) return false;
      }
      for (int reg = 0; reg < 2; ++reg) {
        const int k = b_row(lane, reg, half), n = b_col(lane, reg);
        if (b_lane(k, n) != lane || b_reg(k, n) != reg || half_of(k) != half) return false;
      }
    }
  return true;
}
static_assert(maps_are_consistent(), "m16n8k16 fragment maps and their inverses disagree");

}  // namespace m16n8k16

namespace m8n8 {
// ldmatrix: lane l gives the address of row l % 8 of matrix l / 8 (lanes 0-7 for .x1, 0-15 for
// .x2, all for .x4); each row is 8 b16 elements (16 bytes). Register j of lane l receives matrix j's
// row l / 4, columns 2·(l % 4) and +1 (low, high half); with .trans, column l / 4, rows 2·(l % 4)
// and +1 — so an 8×8 tile stored k-major arrives as the B fragment of mma.m16n8k16.
NINCC_HOST_DEVICE constexpr int address_lane(int matrix, int row) { return 8 * matrix + row; }
NINCC_HOST_DEVICE constexpr int row_of(int lane, int half, bool trans) { return trans ? 2 * (lane % 4) + half : lane / 4; }
NINCC_HOST_DEVICE constexpr int col_of(int lane, int half, bool trans) { return trans ? lane / 4 : 2 * (lane % 4) + half; }
}  // namespace m8n8
}  // namespace nincc
