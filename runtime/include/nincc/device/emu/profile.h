// The emulator's profile: the counters Nsight Compute reads on a GPU, taken from what emulated
// kernels do through the primitives. Each access records its call site; at the end of a block the
// accesses of one warp instruction — same warp, same site, same execution count — are grouped and
// priced: 32-byte sectors for global memory, wavefronts and bank conflicts for shared memory
// (docs/profile.md states the rules and where they differ from the hardware).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <tuple>
#include <unordered_map>
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
  uint64_t global_load_instructions = 0, global_load_sectors = 0;
  uint64_t global_store_instructions = 0, global_store_sectors = 0;
  uint64_t async_copy_instructions = 0, async_copy_sectors = 0;  // cp.async: the global side
  uint64_t shared_load_instructions = 0, shared_load_wavefronts = 0;
  uint64_t shared_store_instructions = 0, shared_store_wavefronts = 0;
  uint64_t shared_bank_conflicts = 0;  // wavefronts beyond one per phase (loads and stores)
  // Distinct 32-byte global sectors the launch touched: what DRAM must move at least once.
  uint64_t unique_global_sectors = 0;
};

// One lane's part of a warp instruction: `bytes` at `address`.
struct LaneAccess {
  unsigned lane;
  uintptr_t address;
  unsigned bytes;
};

// Distinct 32-byte sectors a warp instruction touches: how global memory is moved (coalescing).
inline unsigned sectors_touched(const LaneAccess* first, const LaneAccess* last) {
  std::vector<uintptr_t> sectors;
  for (const LaneAccess* a = first; a != last; ++a)
    for (uintptr_t s = a->address / 32; s <= (a->address + a->bytes - 1) / 32; ++s) sectors.push_back(s);
  std::sort(sectors.begin(), sectors.end());
  return unsigned(std::unique(sectors.begin(), sectors.end()) - sectors.begin());
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
  for (unsigned phase = 0; phase < 32 / phase_lanes; ++phase) {
    std::vector<uintptr_t> words;
    for (const LaneAccess* a = first; a != last; ++a)
      if (a->lane / phase_lanes == phase)
        for (uintptr_t w = a->address / 4; w <= (a->address + a->bytes - 1) / 4; ++w) words.push_back(w);
    if (words.empty()) continue;
    std::sort(words.begin(), words.end());
    words.erase(std::unique(words.begin(), words.end()), words.end());
    unsigned per_bank[32] = {};
    for (uintptr_t w : words) ++per_bank[w % 32];
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
    {"global_load_instructions", &Counters::global_load_instructions},
    {"global_load_sectors", &Counters::global_load_sectors},
    {"global_store_instructions", &Counters::global_store_instructions},
    {"global_store_sectors", &Counters::global_store_sectors},
    {"async_copy_instructions", &Counters::async_copy_instructions},
    {"async_copy_sectors", &Counters::async_copy_sectors},
    {"shared_load_instructions", &Counters::shared_load_instructions},
    {"shared_load_wavefronts", &Counters::shared_load_wavefronts},
    {"shared_store_instructions", &Counters::shared_store_instructions},
    {"shared_store_wavefronts", &Counters::shared_store_wavefronts},
    {"shared_bank_conflicts", &Counters::shared_bank_conflicts},
    {"unique_global_sectors", &Counters::unique_global_sectors},
};
static_assert(sizeof(kCounterFields) / sizeof(kCounterFields[0]) * sizeof(uint64_t) == sizeof(Counters),
              "kCounterFields must name every counter");

// Adds `c` scaled by `factor` (a sample standing for `factor` times as many blocks) to `into`;
// blocks_run stays what it is.
inline void add_scaled(Counters& into, const Counters& c, double factor) {
  for (const CounterField& f : kCounterFields)
    into.*(f.member) += f.member == &Counters::blocks_run ? c.*(f.member) : uint64_t(double(c.*(f.member)) * factor + 0.5);
}

// One JSON object of a launch's counters: {"kernel": …, "grid": […], "block": […], "<counter>": n, …}.
inline void write_counters_json(std::FILE* out, const char* kernel, const unsigned (&grid)[3], const unsigned (&block)[3],
                                const Counters& c) {
  std::fprintf(out, "{\"kernel\": \"%s\", \"grid\": [%u, %u, %u], \"block\": [%u, %u, %u]", kernel, grid[0], grid[1],
               grid[2], block[0], block[1], block[2]);
  for (const CounterField& f : kCounterFields)
    std::fprintf(out, ", \"%s\": %llu", f.name, static_cast<unsigned long long>(c.*(f.member)));
  std::fprintf(out, "}\n");
}

class Profile {
 public:
  Counters counters;

  // One lane's access at a call site; `rank` is the thread's rank in its block.
  void record(Space space, const char* file, int line, unsigned rank, const void* p, unsigned bytes) {
    const uint32_t occurrence = occurrences_[SiteKey{file, line, space, rank}]++;
    accesses_.push_back(Access{file, line, space, rank / 32, occurrence,
                               LaneAccess{rank % 32, reinterpret_cast<uintptr_t>(p), bytes}});
    if (space != Space::shared_load && space != Space::shared_store) {
      const uintptr_t a = reinterpret_cast<uintptr_t>(p);
      for (uintptr_t s = a / 32; bytes > 0 && s <= (a + bytes - 1) / 32; ++s) unique_sectors_.insert(s);
    }
  }

  // Prices the block's warp instructions and starts the next block.
  void end_block() {
    std::sort(accesses_.begin(), accesses_.end(), [](const Access& x, const Access& y) {
      return std::tie(x.file, x.line, x.space, x.warp, x.occurrence, x.lane.lane) <
             std::tie(y.file, y.line, y.space, y.warp, y.occurrence, y.lane.lane);
    });
    std::vector<LaneAccess> lanes;
    for (size_t i = 0; i < accesses_.size();) {
      size_t j = i;
      lanes.clear();
      while (j < accesses_.size() && accesses_[j].same_instruction(accesses_[i])) lanes.push_back(accesses_[j++].lane);
      price(accesses_[i].space, lanes);
      i = j;
    }
    accesses_.clear();
    occurrences_.clear();
    ++counters.blocks;
    ++counters.blocks_run;
    counters.unique_global_sectors = unique_sectors_.size();
  }

 private:
  struct SiteKey {
    const char* file;
    int line;
    Space space;
    unsigned rank;
    bool operator==(const SiteKey& o) const {
      return file == o.file && line == o.line && space == o.space && rank == o.rank;
    }
  };
  struct SiteHash {
    size_t operator()(const SiteKey& k) const {
      return std::hash<const void*>()(k.file) ^ (size_t(k.line) * 0x9E3779B97F4A7C15ull) ^
             (size_t(k.rank) << 20) ^ (size_t(k.space) << 40);
    }
  };
  struct Access {
    const char* file;
    int line;
    Space space;
    unsigned warp;
    uint32_t occurrence;
    LaneAccess lane;
    bool same_instruction(const Access& o) const {
      return file == o.file && line == o.line && space == o.space && warp == o.warp && occurrence == o.occurrence;
    }
  };

  void price(Space space, const std::vector<LaneAccess>& lanes) {
    const LaneAccess* first = lanes.data();
    const LaneAccess* last = first + lanes.size();
    Counters& c = counters;
    switch (space) {
      case Space::global_load:
        ++c.global_load_instructions, c.global_load_sectors += sectors_touched(first, last);
        break;
      case Space::global_store:
        ++c.global_store_instructions, c.global_store_sectors += sectors_touched(first, last);
        break;
      case Space::async_copy_global:
        ++c.async_copy_instructions, c.async_copy_sectors += sectors_touched(first, last);
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

  std::vector<Access> accesses_;
  std::unordered_map<SiteKey, uint32_t, SiteHash> occurrences_;
  std::unordered_set<uintptr_t> unique_sectors_;
};

}  // namespace emu
}  // namespace nincc
