// The emulator's profile: the counters Nsight Compute reads on a GPU, taken from what emulated
// kernels do through the primitives. Each access records its call site; the accesses of one warp
// instruction — same warp, same site, same execution count — are grouped and priced once the warp's
// last lane has joined (or at the end of the block, for lanes that diverged away): 32-byte sectors
// for global memory, wavefronts and bank conflicts for shared memory (docs/profile.md states the
// rules and where they differ from the hardware).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <unordered_set>
#include <vector>

#include "config.h"

namespace nincc {
namespace emu NINCC_EMU_HIDDEN {

enum class Space : uint8_t { global_load, global_store, shared_load, shared_store, async_copy_global };

// Totals over the blocks a profiled launch ran. Instructions are warp instructions (one per warp
// per execution of a call site, as ncu's inst_executed); FMAs are per thread.
struct Counters {
  uint64_t blocks = 0;               // blocks counted (a sampled launch: the grid's, scaled)
  uint64_t blocks_run = 0;           // blocks the emulator actually ran
  uint64_t ffma = 0;                 // fp32 fused multiply-adds (nincc::ffma), per thread
  uint64_t mma_tf32_m16n8k8 = 0;     // warp instructions
  uint64_t mma_bf16_m16n8k16 = 0;    // warp instructions
  uint64_t barriers = 0;             // __syncthreads a block passed (once per block, not per warp)
  uint64_t atomic_operations = 0;    // atomicAdd/atomicInc on unsigned (atomics.h), per thread
  uint64_t threadfences = 0;         // __threadfence, per thread
  uint64_t global_load_instructions = 0, global_load_sectors = 0;
  uint64_t global_store_instructions = 0, global_store_sectors = 0;
  uint64_t async_copy_instructions = 0, async_copy_sectors = 0;  // cp.async: the global side
  // Coalescing: the distinct bytes each global warp instruction's active lanes asked for, and the
  // fewest sectors those bytes could fill (⌈bytes / 32⌉). An instruction is fully coalesced when its
  // sectors are that minimum; requested / (sectors · 32) is ncu's load/store efficiency.
  uint64_t global_load_requested_bytes = 0, global_load_ideal_sectors = 0;
  uint64_t global_store_requested_bytes = 0, global_store_ideal_sectors = 0;
  uint64_t async_copy_requested_bytes = 0, async_copy_ideal_sectors = 0;
  // Each block's distinct stored sectors, summed over the blocks: what its stores touch at the least once the
  // block's outputs are fixed (each sector stored once by its block). Stores above it come from the
  // instructions' shape; the ideal's shortfall below it from the outputs' runs not being whole sectors.
  uint64_t global_store_block_sectors = 0;
  uint64_t shared_load_instructions = 0, shared_load_wavefronts = 0;
  uint64_t shared_store_instructions = 0, shared_store_wavefronts = 0;
  uint64_t shared_bank_conflicts = 0;  // wavefronts beyond one per phase (loads and stores)
  // Distinct 32-byte global sectors the launch touched: what DRAM must move at least once.
  uint64_t unique_global_sectors = 0;
  // Each block's distinct global sectors summed over the grid (what HBM moves if no block reuses another's
  // data), split by the grid dimensions along which other blocks read the same sector: `_x` sectors are
  // also read by the blocks that differ only in blockIdx.x, and so on (sharing_split in grid.h), and
  // halo_x below. The time
  // model charges a shared sector to HBM once per sharing group when the reuse fits in L2 (docs/profile.md).
  uint64_t block_sectors_private = 0;
  uint64_t block_sectors_shared_x = 0, block_sectors_shared_y = 0, block_sectors_shared_xy = 0;
  uint64_t block_sectors_shared_z = 0, block_sectors_shared_xz = 0, block_sectors_shared_yz = 0;
  uint64_t block_sectors_shared_xyz = 0;
  // Sectors the block's predecessor along x reads too but the far blocks along x do not: a halo,
  // brought into L2 by the block before (not in the split above).
  uint64_t block_sectors_halo_x = 0;
};

// One lane's part of a warp instruction: `bytes` at `address`.
struct LaneAccess {
  unsigned lane;
  uintptr_t address;
  unsigned bytes;
};

// The distinct 32-byte sectors a warp instruction touches, sorted, in `out`: how global memory is
// moved (coalescing).
inline const std::vector<uintptr_t>& distinct_sectors(const LaneAccess* first, const LaneAccess* last,
                                                      std::vector<uintptr_t>& out) {
  out.clear();
  for (const LaneAccess* a = first; a != last; ++a)
    for (uintptr_t s = a->address / 32; s <= (a->address + a->bytes - 1) / 32; ++s) out.push_back(s);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// The distinct bytes a warp instruction's lanes access (lanes reading the same bytes count them
// once): what the instruction asked global memory for.
inline unsigned distinct_bytes(const LaneAccess* first, const LaneAccess* last) {
  std::pair<uintptr_t, uintptr_t> ranges[32];  // [begin, end) per lane, at most one access a lane
  size_t n = 0;
  for (const LaneAccess* a = first; a != last && n < 32; ++a) ranges[n++] = {a->address, a->address + a->bytes};
  std::sort(ranges, ranges + n);
  unsigned bytes = 0;
  uintptr_t covered = 0;  // the end of the bytes counted so far
  for (size_t i = 0; i < n; ++i) {
    const uintptr_t begin = std::max(ranges[i].first, covered);
    if (ranges[i].second > begin) bytes += unsigned(ranges[i].second - begin), covered = ranges[i].second;
  }
  return bytes;
}

// Shared memory serves 32 banks of 4 bytes, 128 bytes per wavefront. A warp instruction of
// b-byte accesses is split into phases of 128 / b consecutive lanes (all 32 for b <= 4, 16 for 8,
// 8 for 16 — so ldmatrix, whose lanes give 16-byte rows, prices one phase per 8×8 matrix). Within a
// phase, lanes reading the same 4-byte word share it (broadcast); distinct words in one bank take
// one wavefront each. Returns {wavefronts, phases}: the conflicts are the difference.
inline std::pair<unsigned, unsigned> shared_wavefronts(const LaneAccess* first, const LaneAccess* last) {
  const unsigned bytes = first->bytes;
  const unsigned phase_lanes = bytes <= 4 ? 32 : 128 / bytes;
  unsigned wavefronts = 0, phases = 0;
  // At most 32 lanes of at most 16 bytes each, misaligned: 5 words a lane.
  uintptr_t words[32 * 5];
  for (unsigned phase = 0; phase < 32 / phase_lanes; ++phase) {
    size_t n = 0;
    for (const LaneAccess* a = first; a != last; ++a)
      if (a->lane / phase_lanes == phase)
        for (uintptr_t w = a->address / 4; w <= (a->address + a->bytes - 1) / 4 && n < 32 * 5; ++w) words[n++] = w;
    if (n == 0) continue;
    std::sort(words, words + n);
    n = size_t(std::unique(words, words + n) - words);
    unsigned per_bank[32] = {};
    for (size_t i = 0; i < n; ++i) ++per_bank[words[i] % 32];
    wavefronts += *std::max_element(per_bank, per_bank + 32);
    ++phases;
  }
  return {wavefronts, phases};
}

// Every counter by name: the JSON keys (`emu_test --counts`, NINCC_EMU_PROFILE) and the tests' list.
struct CounterField {
  const char* name;
  uint64_t Counters::*member;
};
inline constexpr CounterField kCounterFields[] = {
    {"blocks", &Counters::blocks},
    {"blocks_run", &Counters::blocks_run},
    {"ffma", &Counters::ffma},
    {"mma_tf32_m16n8k8", &Counters::mma_tf32_m16n8k8},
    {"mma_bf16_m16n8k16", &Counters::mma_bf16_m16n8k16},
    {"barriers", &Counters::barriers},
    {"atomic_operations", &Counters::atomic_operations},
    {"threadfences", &Counters::threadfences},
    {"global_load_instructions", &Counters::global_load_instructions},
    {"global_load_sectors", &Counters::global_load_sectors},
    {"global_store_instructions", &Counters::global_store_instructions},
    {"global_store_sectors", &Counters::global_store_sectors},
    {"async_copy_instructions", &Counters::async_copy_instructions},
    {"async_copy_sectors", &Counters::async_copy_sectors},
    {"global_load_requested_bytes", &Counters::global_load_requested_bytes},
    {"global_load_ideal_sectors", &Counters::global_load_ideal_sectors},
    {"global_store_requested_bytes", &Counters::global_store_requested_bytes},
    {"global_store_ideal_sectors", &Counters::global_store_ideal_sectors},
    {"async_copy_requested_bytes", &Counters::async_copy_requested_bytes},
    {"async_copy_ideal_sectors", &Counters::async_copy_ideal_sectors},
    {"global_store_block_sectors", &Counters::global_store_block_sectors},
    {"shared_load_instructions", &Counters::shared_load_instructions},
    {"shared_load_wavefronts", &Counters::shared_load_wavefronts},
    {"shared_store_instructions", &Counters::shared_store_instructions},
    {"shared_store_wavefronts", &Counters::shared_store_wavefronts},
    {"shared_bank_conflicts", &Counters::shared_bank_conflicts},
    {"unique_global_sectors", &Counters::unique_global_sectors},
    {"block_sectors_private", &Counters::block_sectors_private},
    {"block_sectors_shared_x", &Counters::block_sectors_shared_x},
    {"block_sectors_shared_y", &Counters::block_sectors_shared_y},
    {"block_sectors_shared_xy", &Counters::block_sectors_shared_xy},
    {"block_sectors_shared_z", &Counters::block_sectors_shared_z},
    {"block_sectors_shared_xz", &Counters::block_sectors_shared_xz},
    {"block_sectors_shared_yz", &Counters::block_sectors_shared_yz},
    {"block_sectors_shared_xyz", &Counters::block_sectors_shared_xyz},
    {"block_sectors_halo_x", &Counters::block_sectors_halo_x},
};

// The split counters indexed by a mask of the dimensions a sector is shared along (bit 0 x, 1 y, 2 z).
inline constexpr uint64_t Counters::*kBlockSectorsSharedAlong[8] = {
    &Counters::block_sectors_private,   &Counters::block_sectors_shared_x,  &Counters::block_sectors_shared_y,
    &Counters::block_sectors_shared_xy, &Counters::block_sectors_shared_z,  &Counters::block_sectors_shared_xz,
    &Counters::block_sectors_shared_yz, &Counters::block_sectors_shared_xyz};
static_assert(sizeof(kCounterFields) / sizeof(kCounterFields[0]) * sizeof(uint64_t) == sizeof(Counters),
              "kCounterFields must name every counter");

// Adds a·wa + b·wb to `into` (samples standing for wa and wb times as many blocks), rounded once, so
// that a blend whose weights sum to a whole keeps an exact count exact; blocks_run adds what ran.
inline void add_blended(Counters& into, const Counters& a, double wa, const Counters& b, double wb) {
  for (const CounterField& f : kCounterFields)
    into.*(f.member) += f.member == &Counters::blocks_run
                            ? a.*(f.member) + b.*(f.member)
                            : uint64_t(double(a.*(f.member)) * wa + double(b.*(f.member)) * wb + 0.5);
}

// Adds `c` scaled by `factor` (a sample standing for `factor` times as many blocks) to `into`;
// blocks_run stays what it is.
inline void add_scaled(Counters& into, const Counters& c, double factor) { add_blended(into, c, factor, Counters{}, 0); }

// One JSON object of a launch's counters: {"kernel": …, "grid": […], "block": […], "<counter>": n, …}.
inline void write_counters_json(std::FILE* out, const char* kernel, const unsigned (&grid)[3], const unsigned (&block)[3],
                                const Counters& c, double emulated_ms = -1) {
  std::fprintf(out, "{\"kernel\": \"%s\", \"grid\": [%u, %u, %u], \"block\": [%u, %u, %u]", kernel, grid[0], grid[1],
               grid[2], block[0], block[1], block[2]);
  for (const CounterField& f : kCounterFields)
    std::fprintf(out, ", \"%s\": %llu", f.name, static_cast<unsigned long long>(c.*(f.member)));
  if (emulated_ms >= 0) std::fprintf(out, ", \"emulated_ms\": %.1f", emulated_ms);
  std::fprintf(out, "}\n");
}

// How a profiled block's atomicInc draws its ticket (atomics.h). A sampled launch (sample_grid) runs too few
// blocks for any to draw a tile's last ticket from memory, so it forces the draw: `not_last` for the blocks that
// stand for the many, `last` for a second run of each that stands for the one in `period` that finishes a tile
// and runs its tail (a wgrad that sums its splits). `memory` (every block run) draws what the counter holds.
enum class TicketDraw { memory, not_last, last };

class Profile {
 public:
  Counters counters;
  TicketDraw ticket_draw = TicketDraw::memory;
  // Tickets this profile's blocks drew, and their counter's period (atomicInc's limit + 1: one draw in
  // `ticket_period` is a counter's last); `ticket_periods_differ` when draws disagreed on it.
  uint64_t tickets_drawn = 0, ticket_period = 0;
  bool ticket_periods_differ = false;

  // A forced draw (ticket_draw is not `memory`): the value atomicInc returns; the counter is left as it was.
  unsigned draw_ticket(unsigned limit) {
    const uint64_t period = uint64_t(limit) + 1;
    if (tickets_drawn++ > 0 && period != ticket_period) ticket_periods_differ = true;
    ticket_period = period;
    return ticket_draw == TicketDraw::last ? limit : 0u;
  }
  // Each block's distinct global sectors, summed over the blocks run (the split counters' total, before
  // sharing_split divides it), and the last block's own sectors (sharing_split compares blocks' sets).
  uint64_t block_sectors = 0;
  const std::unordered_set<uintptr_t>& last_block_sectors() const { return block_sectors_; }

  // Called before a block's threads run: a warp instruction is complete once all its warp's threads
  // (the block's last warp may be partial) have made their access.
  void begin_block(unsigned threads) {
    threads_ = threads;
    block_sectors_.clear();
    block_store_sectors_.clear();
  }

  // One lane's access at a call site; `rank` is the thread's rank in its block. The access joins its
  // warp instruction — same site, same warp, same execution count of the site by this thread — which
  // is priced as soon as every lane of the warp has joined it, so a block's accesses are never all
  // held at once (lanes that diverged away leave theirs to end_block).
  void record(Space space, const char* file, int line, unsigned rank, const void* p, unsigned bytes) {
    Site& site = site_of(file, line, space);
    if (site.executions.size() <= rank) site.executions.resize(rank + 1, 0);
    const uint32_t execution = site.executions[rank]++;
    const unsigned warp = rank / 32;
    if (site.warps.size() <= warp) site.warps.resize(warp + 1);
    OpenInstructions& open = site.warps[warp];
    const size_t at = execution - open.first_execution;
    while (open.pending.size() <= at) open.pending.emplace_back();
    WarpInstruction& instruction = open.pending[at];
    instruction.lanes[instruction.count++] = LaneAccess{rank % 32, reinterpret_cast<uintptr_t>(p), bytes};
    if (instruction.count == lanes_in_warp(warp)) {
      price(space, instruction);
      instruction.count = kPriced;
      while (!open.pending.empty() && open.pending.front().count == kPriced) {
        open.pending.pop_front();
        ++open.first_execution;
      }
    }
  }

  // Prices what diverged lanes left incomplete and starts the next block.
  void end_block() {
    for (Site& site : sites_) {
      for (OpenInstructions& open : site.warps)
        for (WarpInstruction& instruction : open.pending)
          if (instruction.count != kPriced && instruction.count > 0) price(site.space, instruction);
      site.warps.clear();
      site.executions.clear();
    }
    ++counters.blocks;
    ++counters.blocks_run;
    counters.unique_global_sectors = unique_sectors_.size();
    block_sectors += block_sectors_.size();
    counters.global_store_block_sectors += block_store_sectors_.size();
  }

 private:
  static constexpr unsigned kPriced = ~0u;

  // The accesses of one warp instruction so far, at most one per lane.
  struct WarpInstruction {
    unsigned count = 0;  // lanes joined, or kPriced
    LaneAccess lanes[32];
  };
  // One warp's instructions at one site that are not priced yet, from execution `first_execution` on.
  struct OpenInstructions {
    uint32_t first_execution = 0;
    std::deque<WarpInstruction> pending;
  };
  struct Site {
    const char* file;
    int line;
    Space space;
    std::vector<uint32_t> executions;     // per thread rank: times it executed this site in this block
    std::vector<OpenInstructions> warps;  // per warp
  };

  unsigned lanes_in_warp(unsigned warp) const {
    const unsigned first = warp * 32;
    return threads_ > first && threads_ - first < 32 ? threads_ - first : 32;
  }

  // The site's state; a small direct-mapped cache in front of the list (a kernel has few sites).
  Site& site_of(const char* file, int line, Space space) {
    const size_t slot = (size_t(line) * 31 + size_t(space)) % kCacheSlots;
    const size_t cached = cache_[slot];
    if (cached < sites_.size()) {
      const Site& s = sites_[cached];
      if (s.line == line && s.space == space && s.file == file) return sites_[cached];
    }
    size_t i = 0;
    while (i < sites_.size() && !(sites_[i].line == line && sites_[i].space == space && sites_[i].file == file)) ++i;
    if (i == sites_.size()) sites_.push_back(Site{file, line, space, {}, {}});
    cache_[slot] = i;
    return sites_[i];
  }

  void price(Space space, const WarpInstruction& instruction) {
    const LaneAccess* first = instruction.lanes;
    const LaneAccess* last = first + instruction.count;
    Counters& c = counters;
    switch (space) {
      case Space::global_load:
        ++c.global_load_instructions, c.global_load_sectors += global_sectors(first, last);
        count_requested(first, last, c.global_load_requested_bytes, c.global_load_ideal_sectors);
        break;
      case Space::global_store:
        ++c.global_store_instructions, c.global_store_sectors += global_sectors(first, last);
        block_store_sectors_.insert(scratch_.begin(), scratch_.end());
        count_requested(first, last, c.global_store_requested_bytes, c.global_store_ideal_sectors);
        break;
      case Space::async_copy_global:
        ++c.async_copy_instructions, c.async_copy_sectors += global_sectors(first, last);
        count_requested(first, last, c.async_copy_requested_bytes, c.async_copy_ideal_sectors);
        break;
      case Space::shared_load:
      case Space::shared_store: {
        const auto [wavefronts, phases] = shared_wavefronts(first, last);
        if (space == Space::shared_load) ++c.shared_load_instructions, c.shared_load_wavefronts += wavefronts;
        else ++c.shared_store_instructions, c.shared_store_wavefronts += wavefronts;
        c.shared_bank_conflicts += wavefronts - phases;
        break;
      }
    }
  }

  static void count_requested(const LaneAccess* first, const LaneAccess* last, uint64_t& requested, uint64_t& ideal) {
    const unsigned bytes = distinct_bytes(first, last);
    requested += bytes;
    ideal += (bytes + 31) / 32;
  }

  // The instruction's distinct sectors, which also join the launch's set of unique ones.
  unsigned global_sectors(const LaneAccess* first, const LaneAccess* last) {
    const std::vector<uintptr_t>& sectors = distinct_sectors(first, last, scratch_);
    unique_sectors_.insert(sectors.begin(), sectors.end());
    block_sectors_.insert(sectors.begin(), sectors.end());
    return unsigned(sectors.size());
  }

  static constexpr size_t kCacheSlots = 64;
  unsigned threads_ = 32;
  std::vector<Site> sites_;
  size_t cache_[kCacheSlots] = {};
  std::vector<uintptr_t> scratch_;
  std::unordered_set<uintptr_t> unique_sectors_;
  std::unordered_set<uintptr_t> block_store_sectors_;  // this block's stored ones
  std::unordered_set<uintptr_t> block_sectors_;  // this block's
};

}  // namespace emu
}  // namespace nincc
