// Fibers of the SIMT emulator: one stack and one saved context per emulated CUDA thread, and the
// switch between them — a few instructions of x86-64 assembly (or ucontext with
// NINCC_EMU_UCONTEXT) — annotated so AddressSanitizer follows every change of stack.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

#include "config.h"

#ifdef NINCC_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef NINCC_EMU_UCONTEXT
#include <ucontext.h>
#endif

namespace nincc {
namespace emu NINCC_EMU_HIDDEN {

// Where a suspended fiber (or the scheduler) resumes, and the stack it runs on.
struct Context {
#ifdef NINCC_EMU_UCONTEXT
  ucontext_t uc;
#else
  void* sp = nullptr;  // the saved registers sit on the stack just above it
#endif
  // ASan must be told the bounds of the stack a switch goes to; a fiber learns the scheduler's
  // from ASan itself the first time it starts (fiber_started).
  const void* stack_lo = nullptr;
  size_t stack_size = 0;
  void* fake_stack = nullptr;  // ASan's use-after-return frames of this context while suspended
};

using FiberEntry = void (*)(void* arg);

namespace detail {
#ifdef NINCC_EMU_UCONTEXT
inline void ucontext_start(unsigned entry_hi, unsigned entry_lo, unsigned arg_hi, unsigned arg_lo) {
  // makecontext passes int-sized arguments only, so the two pointers arrive in halves.
  auto entry = reinterpret_cast<FiberEntry>((uintptr_t(entry_hi) << 32) | entry_lo);
  entry(reinterpret_cast<void*>((uintptr_t(arg_hi) << 32) | arg_lo));
  std::abort();  // a fiber leaves through leave_context, never by returning
}
#else
// raw_switch(&from_sp, to_sp). Only callee-saved registers must survive a call (System V): rbp,
// rbx, r12-r15. They are pushed on the current stack, the stack pointer is saved, the other stack
// is loaded and its set popped; `ret` then continues wherever that context last called
// raw_switch. The MXCSR and x87 control words are callee-saved too, but device code cannot change
// them (CUDA has no fesetround), so every fiber keeps the launching thread's: leaving them out
// makes a switch several times cheaper (ldmxcsr and fldcw serialize).
__attribute__((naked, noinline)) inline void raw_switch(void** /*from_sp*/, void* /*to_sp*/) {
  __asm__(
      "pushq %rbp\n\t"
      "pushq %rbx\n\t"
      "pushq %r12\n\t"
      "pushq %r13\n\t"
      "pushq %r14\n\t"
      "pushq %r15\n\t"
      "movq %rsp, (%rdi)\n\t"
      "movq %rsi, %rsp\n\t"
      "popq %r15\n\t"
      "popq %r14\n\t"
      "popq %r13\n\t"
      "popq %r12\n\t"
      "popq %rbx\n\t"
      "popq %rbp\n\t"
      "ret\n\t");
}

// The first `ret` into a new fiber lands here with the entry in r13 and its argument in r12 (set
// up by prepare) and the stack 16-byte aligned, as a call expects.
__attribute__((naked, noinline)) inline void fiber_trampoline() {
  __asm__(
      "movq %r12, %rdi\n\t"
      "callq *%r13\n\t"
      "ud2\n\t");
}
#endif
}  // namespace detail

// Makes `c` start `entry(arg)` on the stack [stack_lo, stack_lo + size) when first switched to.
inline void prepare(Context& c, char* stack_lo, size_t size, FiberEntry entry, void* arg) {
  c.stack_lo = stack_lo;
  c.stack_size = size;
  c.fake_stack = nullptr;
#ifdef NINCC_EMU_ASAN
  // A block abandoned after a fault leaves its frames' redzones poisoned on the reused stack.
  __asan_unpoison_memory_region(stack_lo, size);
#endif
#ifdef NINCC_EMU_UCONTEXT
  if (getcontext(&c.uc) != 0) throw std::runtime_error("nincc emu: getcontext failed");
  c.uc.uc_stack.ss_sp = stack_lo;
  c.uc.uc_stack.ss_size = size;
  c.uc.uc_link = nullptr;
  const auto e = reinterpret_cast<uintptr_t>(entry), a = reinterpret_cast<uintptr_t>(arg);
  makecontext(&c.uc, reinterpret_cast<void (*)()>(&detail::ucontext_start), 4, unsigned(e >> 32), unsigned(e),
              unsigned(a >> 32), unsigned(a));
#else
  auto* top = reinterpret_cast<uint64_t*>(reinterpret_cast<uintptr_t>(stack_lo + size) & ~uintptr_t(15));
  // What raw_switch pops: r15, r14, r13 (entry), r12 (arg), rbx, rbp, then the return address.
  // After the `ret` the stack pointer is `top`, 16-byte aligned as the trampoline's call needs.
  uint64_t* sp = top - 7;
  sp[0] = 0;
  sp[1] = 0;
  sp[2] = reinterpret_cast<uint64_t>(entry);
  sp[3] = reinterpret_cast<uint64_t>(arg);
  sp[4] = 0;
  sp[5] = 0;  // rbp = 0 ends frame-pointer unwinds (ASan, gdb) at the fiber's first frame
  sp[6] = reinterpret_cast<uint64_t>(&detail::fiber_trampoline);
  c.sp = sp;
#endif
}

// Suspends `from` and resumes `to`; returns when something switches back to `from`.
inline void switch_context(Context& from, Context& to) {
#ifdef NINCC_EMU_ASAN
  __sanitizer_start_switch_fiber(&from.fake_stack, to.stack_lo, to.stack_size);
#endif
#ifdef NINCC_EMU_UCONTEXT
  swapcontext(&from.uc, &to.uc);
#else
  detail::raw_switch(&from.sp, to.sp);
#endif
#ifdef NINCC_EMU_ASAN
  __sanitizer_finish_switch_fiber(from.fake_stack, nullptr, nullptr);
#endif
}

// Leaves the current fiber for good (its thread exited, or its block is abandoned after a fault).
[[noreturn]] inline void leave_context(Context& from, Context& to) {
#ifdef NINCC_EMU_ASAN
  __sanitizer_start_switch_fiber(nullptr, to.stack_lo, to.stack_size);  // null: drop its fake stack
#endif
#ifdef NINCC_EMU_UCONTEXT
  swapcontext(&from.uc, &to.uc);
#else
  detail::raw_switch(&from.sp, to.sp);
#endif
  __builtin_unreachable();
}

// The first thing a new fiber does: completes ASan's switch and records the bounds of the stack it
// came from — which ASan alone knows when that is the OS thread's own stack (the scheduler's).
inline void fiber_started(Context& came_from) {
#ifdef NINCC_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &came_from.stack_lo, &came_from.stack_size);
#else
  (void)came_from;
#endif
}

// Bytes of stack per emulated thread: NINCC_EMU_STACK_KB, else 64 KiB (256 KiB under ASan, whose
// redzones and fake frames grow every frame). Kernels keep a few hundred bytes of registers.
inline size_t default_stack_bytes() {
  if (const char* kb = std::getenv("NINCC_EMU_STACK_KB")) {
    const long v = std::strtol(kb, nullptr, 10);
    if (v >= 16) return size_t(v) * 1024;
  }
#ifdef NINCC_EMU_ASAN
  return 256 * 1024;
#else
  return 64 * 1024;
#endif
}

// The stacks of one OS thread's fibers, reused by every block it runs. Each sits above a
// PROT_NONE guard page, so an emulated thread that overflows its stack faults at once instead of
// silently corrupting its neighbour's.
class StackPool {
 public:
  StackPool() = default;
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;
  ~StackPool() { release(); }

  void reserve(size_t count) {
    if (count <= count_) return;
    release();
    const size_t page = size_t(sysconf(_SC_PAGESIZE));
    size_ = (default_stack_bytes() + page - 1) / page * page;
    stride_ = size_ + page;
    void* memory = mmap(nullptr, count * stride_, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (memory == MAP_FAILED) throw std::runtime_error("nincc emu: cannot map stacks for the emulated threads");
    base_ = static_cast<char*>(memory);
    for (size_t i = 0; i < count; ++i) mprotect(base_ + i * stride_, page, PROT_NONE);
    count_ = count;
    guard_ = page;
  }

  char* stack(size_t i) const { return base_ + i * stride_ + guard_; }  // lowest usable byte
  size_t stack_size() const { return size_; }

 private:
  void release() {
    if (!base_) return;
#ifdef NINCC_EMU_ASAN
    for (size_t i = 0; i < count_; ++i) __asan_unpoison_memory_region(stack(i), size_);
#endif
    munmap(base_, count_ * stride_);
    base_ = nullptr;
    count_ = 0;
  }

  char* base_ = nullptr;
  size_t count_ = 0, size_ = 0, stride_ = 0, guard_ = 0;
};

}  // namespace emu
}  // namespace nincc
