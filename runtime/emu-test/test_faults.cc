// Faults the emulator must report, each with kernel, block and thread: barrier divergence in both
// thread orders, a lane leaving before a shuffle, a barrier/shuffle deadlock, shared-memory
// indexes out of bounds and vector accesses a GPU would fault on (checks builds), bad launch
// shapes; and a good launch after each, so an abandoned block leaves nothing behind.
#include <cmath>

#include "check.h"
#include "kernels.h"

namespace emu_test {
namespace {

using nincc::emu::BlockOrder;
using nincc::emu::LaunchOptions;

LaunchOptions with_order(BlockOrder order, bool reverse_threads = false, unsigned workers = 1) {
  LaunchOptions o;
  o.order = order;
  o.reverse_threads = reverse_threads;
  o.workers = workers;
  return o;
}

// After a fault the runner abandons the block's fibers mid-flight; the next launch must not care.
void check_runner_recovers() {
  Buffer<float> out(256);
  nincc::emu::launch("fill_index", dim3(4), dim3(64), 0, &fill_index, out.data());
  bool ok = true;
  for (int i = 0; i < 256; ++i) ok = ok && out[i] == float(i % 64);
  CHECK_MSG(ok, "a launch after a fault gives wrong results");
}

}  // namespace

void test_faults() {
  Buffer<float> out(64 * 8), x(64 * 4 + 8, 0);

  // Thread 5 returns before the barrier: named whichever thread runs first, in every block order.
  for (bool reverse : {false, true}) {
    EXPECT_FAULT(nincc::emu::launch("early_exit_then_sync", dim3(8), dim3(64), 0,
                                    with_order(BlockOrder::forward, reverse), &early_exit_then_sync, out.data()),
                 "kernel `early_exit_then_sync`", "block (0,0,0)", "thread (5,0,0)", "barrier divergence",
                 "faults.cu:");
    check_runner_recovers();
  }
  EXPECT_FAULT(nincc::emu::launch("early_exit_then_sync", dim3(8), dim3(64), 0, with_order(BlockOrder::reverse),
                                  &early_exit_then_sync, out.data()),
               "block (7,0,0)", "thread (5,0,0)");
  EXPECT_FAULT(nincc::emu::launch("early_exit_then_sync", dim3(8), dim3(64), 0,
                                  with_order(BlockOrder::forward, false, 3), &early_exit_then_sync, out.data()),
               "thread (5,0,0)", "barrier divergence");
  check_runner_recovers();

  for (bool reverse : {false, true})
    EXPECT_FAULT(nincc::emu::launch("exit_before_shuffle", dim3(1), dim3(64), 0,
                                    with_order(BlockOrder::forward, reverse), &exit_before_shuffle, out.data()),
                 "kernel `exit_before_shuffle`", "warp divergence", "a warp shuffle");
  EXPECT_FAULT(nincc::emu::launch("barrier_or_shuffle", dim3(1), dim3(64), 0, &barrier_or_shuffle, out.data()),
               "kernel `barrier_or_shuffle`", "deadlock", "wait at __syncthreads (", "wait at a warp shuffle (", "faults.cu:");
  check_runner_recovers();

  // Reading before the writer ran: poison (NaN), in both thread orders, never a stale value.
  for (bool reverse : {false, true}) {
    Buffer<float> seen(64);
    nincc::emu::launch("missing_barrier", dim3(1), dim3(64), 0, with_order(BlockOrder::forward, reverse),
                       &missing_barrier, seen.data());
    CHECK(std::isnan(seen[reverse ? 63 : 0]));
  }

  // A launch cut short (NINCC_EMU_CUT_SHORT) runs exactly its first blocks in the order, with one worker or
  // several, then fails: fill_index's block b writes out[64b, 64b + 64).
  for (unsigned workers : {1u, 3u}) {
    Buffer<float> cut(64 * 8);
    LaunchOptions o = with_order(BlockOrder::reverse, false, workers);
    o.cut_short_after = 3;
    EXPECT_FAULT(nincc::emu::launch("fill_index", dim3(8), dim3(64), 0, o, &fill_index, cut.data()),
                 "kernel `fill_index`: cut short after 3 block(s)");
    int written = 0;
    for (int i = 0; i < 64 * 8; ++i) written += cut[i] == float(i % 64) ? 1 : 0;
    CHECK_MSG(written == 3 * 64 && cut[64 * 7] == 0.0f && cut[64 * 5] == 0.0f && std::isnan(cut[64 * 4]),
              "a launch cut short after 3 blocks ran other blocks than the order's first 3");
    check_runner_recovers();
  }

  EXPECT_FAULT(nincc::emu::launch("fill_index", dim3(1), dim3(2000), 0, &fill_index, out.data()), "at most 1024");
  EXPECT_FAULT(nincc::emu::launch("fill_index", dim3(0), dim3(32), 0, &fill_index, out.data()), "dimension is 0");
  EXPECT_FAULT(nincc::emu::launch("fill_index", dim3(1), dim3(1, 1, 65), 0, &fill_index, out.data()), "block z");
  EXPECT_FAULT(nincc::emu::launch("fill_index", dim3(1), dim3(32), 300 * 1024, &fill_index, out.data()),
               "dynamic shared memory");
  // The most dynamic shared memory a block may have, and a static declaration beside it: over the block's limit too.
  EXPECT_FAULT(nincc::emu::launch("missing_barrier", dim3(1), dim3(64), 227 * 1024, &missing_barrier, out.data()),
               "`tile` (faults.cu:", "brings the kernel's static and dynamic shared memory to 232704 bytes; a block may have 232448");
  check_runner_recovers();

#ifdef NINCC_EMU_CHECKS
  EXPECT_FAULT(nincc::emu::launch("two_barrier_sites", dim3(1), dim3(64), 0, &two_barrier_sites, out.data()),
               "kernel `two_barrier_sites`", "while 1 thread(s) wait at the one at", "barrier divergence");
  for (bool reverse : {false, true})
    EXPECT_FAULT(nincc::emu::launch("shared_index_oob", dim3(2), dim3(64), 0,
                                    with_order(BlockOrder::forward, reverse), &shared_index_oob, out.data()),
                 "kernel `shared_index_oob`", "block (0,0,0) thread (63,0,0)", "shared-memory index 64",
                 "`tile` [64]", "faults.cu:");
  EXPECT_FAULT(nincc::emu::launch("shared_2d_oob", dim3(1), dim3(64), 0, &shared_2d_oob, out.data()),
               "thread (63,0,0)", "index [7][8]", "`grid` [8][8]");
  EXPECT_FAULT(nincc::emu::launch("shared_float4_overrun", dim3(1), dim3(32), 0, &shared_float4_overrun, out.data()),
               "load_float4 (", "faults.cu:", "leave the shared-memory declaration");
  EXPECT_FAULT(nincc::emu::launch("misaligned_float4", dim3(1), dim3(32), 0, &misaligned_float4, x.data(), out.data()),
               "thread (0,0,0)", "not 16-byte aligned");
  EXPECT_FAULT(nincc::emu::launch("mma_unrounded", dim3(1), dim3(32), 0, &mma_unrounded, out.data()),
               "not a tf32 value", "0x3f800001");
  check_runner_recovers();
#else
  std::printf("  (shared-memory bounds, barrier-site, alignment and tf32 checks need NINCC_EMU_CHECKS: skipped)\n");
#endif
}

}  // namespace emu_test
