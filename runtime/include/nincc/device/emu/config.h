// Build switches of the SIMT emulator: which context switch, whether AddressSanitizer is on, and
// the symbol visibility that keeps each kernel library's emulator private to it.
#pragma once

// NINCC_EMU_CHECKS: debug checks (shared-memory bounds, barrier sites, tf32 operands, vector
// alignment). Off, the emulator does only what semantics need, for speed.

#if defined(__SANITIZE_ADDRESS__)
#define NINCC_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NINCC_EMU_ASAN 1
#endif
#endif

// The hand-written switch is x86-64 System V; elsewhere (or on request) ucontext does the job at
// the price of a sigprocmask system call per switch.
#if !defined(__x86_64__) && !defined(NINCC_EMU_UCONTEXT)
#define NINCC_EMU_UCONTEXT 1
#endif

// A kernel library is dlopen'ed beside other kernel libraries and a runtime that may carry its
// own copy of the emulator: the emulator's inline functions and thread_locals must bind inside
// their own library, so the namespace is hidden and only the extern "C" entry points are exported.
#define NINCC_EMU_HIDDEN __attribute__((visibility("hidden")))
#define NINCC_EMU_EXPORTED __attribute__((visibility("default")))
