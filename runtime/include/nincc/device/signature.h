// A kernel's parameter signature as one character per parameter — "p" pointer, "i"/"u" 32-bit and
// "l"/"L" 64-bit integers, "f" float, "d" double (emu_abi.h's codes) — worked out by the compiler from
// the kernel's own type. The emu library puts it in each kernel's descriptor and the cuda module in a
// __device__ string, so both devices marshal kernelParams from the same text (runtime/core/kernel_params).
#pragma once
#include <type_traits>

namespace nincc {
namespace signature {

template <class>
inline constexpr bool unsupported_parameter = false;

template <class T>
constexpr char code() {
  if constexpr (std::is_pointer_v<T>) return 'p';
  else if constexpr (std::is_same_v<T, float>) return 'f';
  else if constexpr (std::is_same_v<T, double>) return 'd';
  else if constexpr (std::is_integral_v<T> && sizeof(T) == 4) return std::is_signed_v<T> ? 'i' : 'u';
  else if constexpr (std::is_integral_v<T> && sizeof(T) == 8) return std::is_signed_v<T> ? 'l' : 'L';
  else static_assert(unsupported_parameter<T>, "kernel parameters are pointers, float, double or 32/64-bit integers");
  return '?';
}

template <class F>
struct Of;
template <class... P>
struct Of<void(P...)> {
  struct Text {
    char c[sizeof...(P) + 1];
  };
  static constexpr Text text() { return Text{{code<std::decay_t<P>>()..., '\0'}}; }
  static constexpr Text value = text();
};

}  // namespace signature
}  // namespace nincc
