// The bf16 number format (the high 16 bits of an fp32: 1 sign, 8 exponent, 7 mantissa bits) as
// plain data both definitions share; the conversions are primitives (cuda.cuh, emu/tensor_ops.h).
#pragma once
#include <cstdint>

namespace nincc {

// A distinct type, so a bf16 is never mixed up with a 16-bit integer by accident.
struct bf16 {
  uint16_t bits;
};

// Two bf16 values in one 32-bit register, as mma and ldmatrix fragments hold them: the element with
// the lower index in the low half (PTX ISA, "Matrix fragments": elements are packed low to high).
NINCC_HOST_DEVICE constexpr uint32_t pack_bf16(bf16 low, bf16 high) {
  return uint32_t(low.bits) | (uint32_t(high.bits) << 16);
}
NINCC_HOST_DEVICE constexpr bf16 low_bf16(uint32_t pair) { return bf16{uint16_t(pair & 0xffffu)}; }
NINCC_HOST_DEVICE constexpr bf16 high_bf16(uint32_t pair) { return bf16{uint16_t(pair >> 16)}; }

}  // namespace nincc
