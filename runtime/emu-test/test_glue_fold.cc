// The emulator's atomics and fence (emu/atomics.h) and the last-block ticket built on them
// (glue_fold_last_cta.cu): atomicInc's wrap rule, atomicAdd under several worker threads, channel
// sums bitwise equal to a separate fixed-order finalize in every schedule, two launches back to
// back with no reset, a launch interrupted mid-way, and the profile's atomic and fence counters.
#include <cmath>
#include <string>
#include <vector>

#include "check.h"
#include "kernels.h"

namespace emu_test {
namespace {

using nincc::emu::Counters;
using nincc::emu::LaunchOptions;

// The shape of a BN statistics epilogue: 37 blocks (odd, and the last one partial) of 64 rows × 19 channels.
constexpr int kRows = 2333, kChannels = 19, kRowsPerBlock = 64, kBlocks = (kRows + kRowsPerBlock - 1) / kRowsPerBlock;

// What a producer plus a separate finalize kernel compute: each block's partial in row order, then
// the partials in block order (`reverse_blocks`: the other order, to show the order shows in the bits).
std::vector<float> two_kernel_sums(const Buffer<float>& x, bool reverse_blocks = false) {
  std::vector<float> partials(size_t(kBlocks) * kChannels), sums(kChannels);
  for (int b = 0; b < kBlocks; ++b)
    for (int c = 0; c < kChannels; ++c) {
      float s = 0.0f;
      for (int r = b * kRowsPerBlock; r < std::min(kRows, (b + 1) * kRowsPerBlock); ++r) s += x[size_t(r) * kChannels + c];
      partials[size_t(b) * kChannels + c] = s;
    }
  for (int c = 0; c < kChannels; ++c) {
    float s = 0.0f;
    for (int i = 0; i < kBlocks; ++i) s += partials[size_t(reverse_blocks ? kBlocks - 1 - i : i) * kChannels + c];
    sums[c] = s;
  }
  return sums;
}

void fill(Buffer<float>& x, uint64_t seed) {
  Rng rng(seed);
  for (size_t i = 0; i < x.size(); ++i) x[i] = rng.uniform() * 1000.0f;  // large and mixed signs: order shows
}

bool same_bits(const Buffer<float>& got, const std::vector<float>& want) {
  return std::memcmp(got.data(), want.data(), want.size() * sizeof(float)) == 0;
}

void launch_sums(const LaunchOptions& o, const Buffer<float>& x, Buffer<float>& partials, unsigned* ticket,
                 Buffer<float>& sums, int interrupt_block = -1) {
  nincc::emu::launch("glue_fold_channel_sums", dim3(kBlocks), dim3(64), 0, o, &glue_fold_channel_sums, x.data(), kRows,
                     kChannels, kRowsPerBlock, partials.data(), ticket, sums.data(), interrupt_block);
}

void test_inc_wraps() {
  // CUDA: old = *p; *p = old >= limit ? 0 : old + 1. From 5 with limit 3 the first step wraps.
  Buffer<unsigned> counter(1, 0), olds(8);
  counter[0] = 5;
  nincc::emu::launch("glue_fold_inc_sequence", dim3(1), dim3(1), 0, &glue_fold_inc_sequence, counter.data(), 3u, 8,
                     olds.data());
  const unsigned want[8] = {5, 0, 1, 2, 3, 0, 1, 2};
  for (int i = 0; i < 8; ++i) CHECK_MSG(olds[i] == want[i], "step " + std::to_string(i) + ": " + std::to_string(olds[i]));
  CHECK(counter[0] == 3);
}

void test_add_is_atomic() {
  // 160 blocks of 64 threads on 4 worker threads, 64 increments a thread, by atomicAdd and by atomicInc: none
  // lost. (Few threads, for the ASan build's sake: fibers cost there, a loop inside one does not.)
  LaunchOptions o;
  o.workers = 4;
  for (int with_inc = 0; with_inc < 2; ++with_inc) {
    Buffer<unsigned> count(1, 0);
    nincc::emu::launch("glue_fold_count_threads", dim3(160), dim3(64), 0, o, &glue_fold_count_threads, count.data(),
                       with_inc, 64);
    CHECK_MSG(count[0] == 64u * 160 * 64, (with_inc ? "atomicInc: " : "atomicAdd: ") + std::to_string(count[0]));
  }
}

void test_last_block_sums() {
  Buffer<float> x(size_t(kRows) * kChannels), partials(size_t(kBlocks) * kChannels), sums(kChannels);
  Buffer<unsigned> ticket(1, 0);
  fill(x, 15);
  const std::vector<float> want = two_kernel_sums(x);
  // The test can tell orders apart: summing the partials the other way changes some bit.
  CHECK(std::memcmp(want.data(), two_kernel_sums(x, true).data(), want.size() * sizeof(float)) != 0);
  for (const auto& [label, options] : schedules()) {
    for (int step = 0; step < 2; ++step) {  // back to back: the ticket wrapped to 0, no reset
      std::memset(sums.data(), 0xFF, sums.size() * sizeof(float));
      launch_sums(options, x, partials, ticket.data(), sums);
      CHECK_MSG(same_bits(sums, want), label + ", step " + std::to_string(step) + ": not the two-kernel sums' bits");
      CHECK_MSG(ticket[0] == 0, label + ": the ticket is " + std::to_string(ticket[0]) + " after a launch");
    }
  }
  // Many worker threads racing for the ticket, many times: exactly one block finalizes each time.
  LaunchOptions racing;
  racing.workers = 8;
  racing.order = nincc::emu::BlockOrder::shuffled;
  for (uint64_t seed = 1; seed <= 6; ++seed) {
    racing.seed = seed;
    std::memset(sums.data(), 0xFF, sums.size() * sizeof(float));
    launch_sums(racing, x, partials, ticket.data(), sums);
    CHECK_MSG(same_bits(sums, want) && ticket[0] == 0, "8 workers, shuffled seed " + std::to_string(seed));
  }
}

void test_interrupted_launch() {
  // A step cut short (block 20 faults, forward order, one worker) leaves blocks 0..19's tickets taken.
  Buffer<float> x(size_t(kRows) * kChannels), partials(size_t(kBlocks) * kChannels), sums(kChannels);
  Buffer<unsigned> ticket(1, 0);
  fill(x, 16);
  EXPECT_FAULT(launch_sums(LaunchOptions{}, x, partials, ticket.data(), sums, 20), "glue_fold_channel_sums",
               "block (20,0,0)");
  CHECK_MSG(ticket[0] == 20, std::to_string(ticket[0]));
  // Left so, the next step's 17th block takes the last ticket and sums partials not yet written.
  Buffer<float> next(size_t(kRows) * kChannels);
  fill(next, 17);
  const std::vector<float> want = two_kernel_sums(next);
  std::memset(sums.data(), 0xFF, sums.size() * sizeof(float));
  launch_sums(LaunchOptions{}, next, partials, ticket.data(), sums);
  CHECK_MSG(!same_bits(sums, want), "a stale ticket went unnoticed");
  // So the host zeroes the tickets after a failed step, and the next step is exact.
  ticket[0] = 0;
  launch_sums(LaunchOptions{}, next, partials, ticket.data(), sums);
  CHECK(same_bits(sums, want) && ticket[0] == 0);
}

void test_counters() {
  // Each thread fences once and thread 0 of each block takes one ticket.
  Buffer<float> x(size_t(kRows) * kChannels), partials(size_t(kBlocks) * kChannels), sums(kChannels);
  Buffer<unsigned> ticket(1, 0);
  fill(x, 18);
  nincc::emu::Profile p;
  LaunchOptions o;
  o.profile = &p;
  launch_sums(o, x, partials, ticket.data(), sums);
  CHECK_MSG(p.counters.threadfences == uint64_t(kBlocks) * 64, std::to_string(p.counters.threadfences));
  CHECK_MSG(p.counters.atomic_operations == uint64_t(kBlocks), std::to_string(p.counters.atomic_operations));
  CHECK(same_bits(sums, two_kernel_sums(x)));
}

// A sampled profile (sample_grid, 2 blocks per class) of the weight gradient's shape of the ticket (5 tiles × 4
// splits, glue_fold_tile_splits) against every block run. No sampled block draws a tile's last ticket from
// memory, so the 5 tails (each loads 4 splits' partials and stores the sum) count only because the sample runs
// each ticket-drawing block a second time drawing the last, weighted 1 in 4. Every block and every tail does
// the same work, so the counts come out exact (to the rounding of the scaled counts), and the sampled launch
// leaves the tickets as they were.
void test_sampled_tail() {
  constexpr int kTiles = 5, kSplits = 4, kWidth = 48;
  Buffer<float> x(size_t(kSplits) * kTiles * kWidth), partials(x.size()), sums(size_t(kTiles) * kWidth);
  Buffer<unsigned> tickets(kTiles, 0);
  fill(x, 19);
  nincc::emu::Profile full, sampled;
  LaunchOptions o;
  for (nincc::emu::Profile* p : {&full, &sampled}) {
    o.profile = p;
    o.sample_per_class = p == &sampled ? 2 : 0;
    nincc::emu::launch("glue_fold_tile_splits", dim3(kTiles, 1, kSplits), dim3(32), 0, o, &glue_fold_tile_splits,
                       x.data(), kWidth, partials.data(), tickets.data(), sums.data());
  }
  for (int i = 0; i < kTiles; ++i) CHECK_MSG(tickets[i] == 0, "tile " + std::to_string(i) + "'s ticket: " + std::to_string(tickets[i]));
  CHECK_MSG(sampled.counters.blocks_run == 8, "blocks run: " + std::to_string(sampled.counters.blocks_run));
  const auto near = [](uint64_t a, uint64_t b) { return a + 1 >= b && b + 1 >= a; };
  for (const nincc::emu::CounterField& f : nincc::emu::kCounterFields) {
    const std::string name = f.name;
    if (name == "blocks_run" || name == "unique_global_sectors" || name.rfind("block_sectors_", 0) == 0) continue;
    CHECK_MSG(near(sampled.counters.*(f.member), full.counters.*(f.member)),
              name + ": sampled " + std::to_string(sampled.counters.*(f.member)) + ", every block " +
                  std::to_string(full.counters.*(f.member)));
  }
}

}  // namespace

void test_glue_fold() {
  test_inc_wraps();
  test_add_is_atomic();
  test_last_block_sums();
  test_interrupted_launch();
  test_counters();
  test_sampled_tail();
}

}  // namespace emu_test
