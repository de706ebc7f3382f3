// The emulator's integer atomics and memory fence (CUDA's atomicAdd/atomicInc on unsigned and
// __threadfence): what a "last block to finish" ticket needs (docs/emu.md). Only the unsigned forms
// exist, so a float atomic — whose sum order would depend on the schedule — does not compile here.
#pragma once

#include "block.h"

#pragma GCC visibility push(hidden)

namespace nincc {
namespace emu NINCC_EMU_HIDDEN {

// Blocks of a launch run on several OS threads (grid.h), so these are real atomics on the address;
// a block's own threads are fibers of one OS thread and need nothing more. Sequentially consistent,
// which is at least what a GPU gives: a fence before an atomic orders the block's earlier stores
// before it for every block that later reads the atomic's result.
inline void count_atomic() {
  if (Profile* profile = runner().profile()) ++profile->counters.atomic_operations;
}

}  // namespace emu
}  // namespace nincc

// old = *address; *address = old + value; returns old.
inline unsigned atomicAdd(unsigned* address, unsigned value) {
  ::nincc::emu::count_atomic();
  return __atomic_fetch_add(address, value, __ATOMIC_SEQ_CST);
}

// old = *address; *address = old >= limit ? 0 : old + 1; returns old (CUDA's wrap-around counter:
// with limit = blocks − 1 the last of `blocks` arrivals sees limit and leaves the counter 0 again).
// A sampled profile forces the draw instead (Profile::ticket_draw).
inline unsigned atomicInc(unsigned* address, unsigned limit) {
  ::nincc::emu::count_atomic();
  ::nincc::emu::Profile* profile = ::nincc::emu::runner().profile();
  if (profile && profile->ticket_draw != ::nincc::emu::TicketDraw::memory) return profile->draw_ticket(limit);
  unsigned old = __atomic_load_n(address, __ATOMIC_SEQ_CST);
  while (!__atomic_compare_exchange_n(address, &old, old >= limit ? 0u : old + 1u, false, __ATOMIC_SEQ_CST,
                                      __ATOMIC_SEQ_CST)) {
  }
  return old;
}

// Orders this thread's earlier global stores before its later memory operations, for all blocks.
inline void __threadfence() {
  if (::nincc::emu::Profile* profile = ::nincc::emu::runner().profile()) ++profile->counters.threadfences;
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

#pragma GCC visibility pop
