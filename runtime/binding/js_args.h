// Minimal checks of JS arguments (the TS layer validates more): each returns the C++ value or
// throws ArgumentError naming the argument.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "js_errors.h"

namespace nincc_binding {

inline std::string stringArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsString()) throw ArgumentError(std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

// An integral Number in [lo, hi] (JS numbers are exact integers up to 2^53).
inline int64_t integerArg(const Napi::CallbackInfo& info, size_t i, const char* what, int64_t lo,
                          int64_t hi) {
  if (!info[i].IsNumber()) throw ArgumentError(std::string(what) + " must be a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (d != std::floor(d) || d < double(lo) || d > double(hi))
    throw ArgumentError(std::string(what) + " must be an integer in " + std::to_string(lo) + ".." +
                        std::to_string(hi));
  return static_cast<int64_t>(d);
}

// A seed: a non-negative integral Number or a BigInt below 2^64.
inline uint64_t seedArg(const Napi::CallbackInfo& info, size_t i) {
  if (info[i].IsBigInt()) {
    bool lossless = false;
    uint64_t seed = info[i].As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw ArgumentError("seed must be a BigInt in 0..2^64-1");
    return seed;
  }
  return static_cast<uint64_t>(integerArg(info, i, "seed", 0, (int64_t(1) << 53) - 1));
}

inline Napi::TypedArray typedArrayArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (!info[i].IsTypedArray()) throw ArgumentError(std::string(what) + " must be a typed array");
  return info[i].As<Napi::TypedArray>();
}

inline const char* typedArrayName(napi_typedarray_type type) {
  switch (type) {
    case napi_float32_array: return "Float32Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint8_array: return "Uint8Array";
    default: return "another typed array";
  }
}

}  // namespace nincc_binding
