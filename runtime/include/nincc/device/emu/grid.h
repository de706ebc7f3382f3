// Grid launches of the SIMT emulator: launch-shape checks, the block order (forward, reverse,
// shuffled), worker OS threads, the typed C++ launch the tests use, and the extern "C" kernel
// descriptors (NINCC_EXPORT) through which the runtime's emu device launches after dlopen.
#pragma once

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "nincc/device/signature.h"

#include "../emu_abi.h"
#include "block.h"

#pragma GCC visibility push(hidden)

namespace nincc {
namespace emu NINCC_EMU_HIDDEN {

enum class BlockOrder { forward, reverse, shuffled };

struct LaunchOptions {
  BlockOrder order = BlockOrder::forward;
  uint64_t seed = 1;           // the shuffled order's permutation
  unsigned workers = 1;        // OS threads running blocks, each with its own fibers
  bool reverse_threads = false;  // resume a block's threads last to first
  Profile* profile = nullptr;    // count what the blocks do (profile.h); profiled launches use one worker
  // With a profile: 0 runs every block; n > 0 runs at most n interior and n edge blocks, evenly
  // spread, and scales each class's counts to its size (sample_grid).
  unsigned sample_per_class = 0;
  // Runs only the first n blocks of the order, then fails the launch as a fault would (NINCC_EMU_CUT_SHORT):
  // what a step cut short leaves behind, for the tests of recovering from one.
  uint64_t cut_short_after = UINT64_MAX;
};

// The launch's failure once `blocks` blocks have run (LaunchOptions::cut_short_after).
inline std::string cut_short_message(const char* kernel, uint64_t blocks) {
  char text[300];  // snprintf, not std::to_string, whose digit table the library would export
  std::snprintf(text, sizeof text, "kernel `%s`: cut short after %llu block(s) (NINCC_EMU_CUT_SHORT: an injected failure)",
                kernel, static_cast<unsigned long long>(blocks));
  return text;
}

// NINCC_EMU_ORDER=forward|reverse|shuffled[:seed], NINCC_EMU_WORKERS=n, NINCC_EMU_REVERSE_THREADS=1:
// the options of launches that name none, so a whole test suite can be rerun in another order.
inline LaunchOptions options_from_environment() {
  LaunchOptions o;
  if (const char* order = std::getenv("NINCC_EMU_ORDER")) {
    if (std::strncmp(order, "reverse", 7) == 0) o.order = BlockOrder::reverse;
    if (std::strncmp(order, "shuffled", 8) == 0) {
      o.order = BlockOrder::shuffled;
      if (order[8] == ':') o.seed = std::strtoull(order + 9, nullptr, 10);
    }
  }
  if (const char* workers = std::getenv("NINCC_EMU_WORKERS")) o.workers = unsigned(std::strtoul(workers, nullptr, 10));
  if (const char* reverse = std::getenv("NINCC_EMU_REVERSE_THREADS")) o.reverse_threads = reverse[0] == '1';
  return o;
}

inline const LaunchOptions& default_options() {
  static const LaunchOptions options = options_from_environment();
  return options;
}

// The limits a GPU enforces at launch, so a launch rule that breaks them fails here first.
inline void check_launch_shape(const KernelLaunch& k) {
  char text[400] = "";
  const dim3 g = k.grid, b = k.block;
  const unsigned long long threads = 1ull * b.x * b.y * b.z;
  if (b.x == 0 || b.y == 0 || b.z == 0 || g.x == 0 || g.y == 0 || g.z == 0)
    std::snprintf(text, sizeof text, "a grid or block dimension is 0");
  else if (threads > 1024)
    std::snprintf(text, sizeof text, "a block of %llu threads; CUDA allows at most 1024", threads);
  else if (b.z > 64)
    std::snprintf(text, sizeof text, "block z is %u; CUDA allows at most 64", b.z);
  else if (g.x > 0x7fffffffu || g.y > 65535 || g.z > 65535)
    std::snprintf(text, sizeof text, "the grid exceeds CUDA's limits (2^31-1, 65535, 65535)");
  else if (1ull * g.x * g.y * g.z > 0xffffffffull)
    std::snprintf(text, sizeof text, "more than 2^32 blocks: too many to emulate");
  else if (k.dynamic_shared_bytes > SharedArena::kDynamicLimit)
    std::snprintf(text, sizeof text, "%zu bytes of dynamic shared memory; a block may have at most %zu",
                  k.dynamic_shared_bytes, SharedArena::kDynamicLimit);
  if (!text[0]) return;
  char message[600];
  std::snprintf(message, sizeof message, "kernel `%s` (grid (%u,%u,%u), block (%u,%u,%u)): bad launch: %s", k.kernel,
                g.x, g.y, g.z, b.x, b.y, b.z, text);
  throw KernelError(message);
}

// Each OS thread keeps one runner (its fibers' stacks and a shared-memory arena) for every block
// it runs, in every launch.
inline BlockRunner& this_thread_runner() {
  static thread_local BlockRunner runner;
  return runner;
}

// The blocks of one launch in the order they are handed out, shared by its worker threads.
struct GridRun {
  const KernelLaunch& k;
  uint64_t count;
  BlockOrder order;
  std::unique_ptr<uint32_t[]> permutation;  // for BlockOrder::shuffled
  std::atomic<uint64_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex mutex;
  uint64_t failed_at = UINT64_MAX;  // the earliest position in the order that faulted
  std::string failure;
  uint64_t cut_short_after;

  GridRun(const KernelLaunch& launch, const LaunchOptions& options)
      : k(launch), count(uint64_t(launch.grid.x) * launch.grid.y * launch.grid.z), order(options.order),
        cut_short_after(options.cut_short_after) {
    if (order != BlockOrder::shuffled) return;
    permutation.reset(new uint32_t[count]);
    for (uint64_t i = 0; i < count; ++i) permutation[i] = uint32_t(i);
    uint64_t state = options.seed;
    for (uint64_t i = count; i > 1; --i) {  // Fisher-Yates over SplitMix64
      uint64_t z = (state += 0x9E3779B97F4A7C15ull);
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
      std::swap(permutation[i - 1], permutation[(z ^ (z >> 31)) % i]);
    }
  }

  uint3 block_at(uint64_t position) const {
    const uint64_t linear = order == BlockOrder::forward   ? position
                            : order == BlockOrder::reverse ? count - 1 - position
                                                           : permutation[position];
    return uint3{unsigned(linear % k.grid.x), unsigned(linear / k.grid.x % k.grid.y),
                 unsigned(linear / (uint64_t(k.grid.x) * k.grid.y))};
  }

  // Runs blocks until none are left or one has faulted.
  void work() {
    for (;;) {
      const uint64_t p = next.fetch_add(1);
      if (p >= count) return;
      if (p >= cut_short_after) {  // without `stop`: the blocks before it, taken by other workers, still run
        std::lock_guard<std::mutex> lock(mutex);
        if (p < failed_at) failed_at = p, failure = cut_short_message(k.kernel, cut_short_after);
        return;
      }
      if (stop.load()) return;
      try {
        this_thread_runner().run(k, block_at(p));
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(mutex);
        if (p < failed_at) failed_at = p, failure = e.what();
        stop = true;
        return;
      }
    }
  }
};

// pthreads rather than std::thread: std::thread's instantiations for a worker type would be
// exported from the kernel library whatever the worker's visibility.
inline void* grid_worker(void* run) {
  static_cast<GridRun*>(run)->work();
  return nullptr;
}

inline uint3 block_coordinates(const KernelLaunch& k, uint64_t b) {
  return uint3{unsigned(b % k.grid.x), unsigned(b / k.grid.x % k.grid.y), unsigned(b / (uint64_t(k.grid.x) * k.grid.y))};
}

// The blocks sharing_split compares. The base is block 1 along x (block 0 in a grid one block wide),
// so that it has a predecessor along x, block 0, to share a halo with. A far probe per dimension d
// moves the base along d only, far enough (two blocks or more where the grid allows) that a halo two
// neighbours share does not pass for data the whole dimension shares; in a 1-D grid it is, for most
// sizes, the interior sample's second block. -1: none (a dimension of one block; x of two blocks,
// where the predecessor is the only other block).
struct SharingProbes {
  uint64_t base;
  int64_t predecessor;
  int64_t far[3];
};

inline SharingProbes sharing_probes(const KernelLaunch& k) {
  const uint64_t gx = k.grid.x, gy = k.grid.y, gz = k.grid.z;
  const uint64_t bx = gx > 1 ? 1 : 0;
  SharingProbes p{bx, gx > 1 ? 0 : -1, {-1, -1, -1}};
  if (gx > 2) p.far[0] = int64_t(std::max<uint64_t>(bx + 2, (gx - 1) / 2) < gx ? std::max<uint64_t>(bx + 2, (gx - 1) / 2) : gx - 1);
  if (gy > 1) p.far[1] = int64_t(bx + std::max<uint64_t>(1, (gy - 1) / 2) * gx);
  if (gz > 1) p.far[2] = int64_t(bx + std::max<uint64_t>(1, (gz - 1) / 2) * gx * gy);
  return p;
}

// Splits `block_sectors` (each block's distinct sectors, summed over the grid) into `into`'s
// block_sectors_* counters by the base block's sectors (sharing_probes): a sector is shared along d
// when the far probe of d reads it too (along x in a grid two blocks wide: when block 0 does); it is
// halo along x when block 0, its predecessor, reads it but the far probe of x does not — the
// predecessor has brought it in already, as each block does for the next one's halo. The split is the
// base's proportions, scaled to the total. `sectors_of(b)` gives block b's sector set, running it if
// it was not run already. A tiled kernel reads what a whole grid row, column or slab shares (weights,
// the A rows of a GEMM) and a halo its neighbour along the tiles reads, so these probes tell them.
template <class SectorsOf>
void sharing_split(const KernelLaunch& k, double block_sectors, SectorsOf&& sectors_of, Counters& into) {
  const SharingProbes probes = sharing_probes(k);
  const std::unordered_set<uintptr_t> base = sectors_of(probes.base);
  if (base.empty()) return;
  std::unordered_set<uintptr_t> predecessor, far[3];
  if (probes.predecessor >= 0) predecessor = sectors_of(uint64_t(probes.predecessor));
  for (unsigned d = 0; d < 3; ++d)
    if (probes.far[d] >= 0) far[d] = sectors_of(uint64_t(probes.far[d]));
  uint64_t along[8] = {}, halo = 0;
  for (uintptr_t s : base) {
    const bool in_predecessor = predecessor.count(s) > 0;
    unsigned mask = 0;
    if (probes.far[0] >= 0 ? far[0].count(s) > 0 : in_predecessor) mask |= 1u;
    for (unsigned d = 1; d < 3; ++d)
      if (far[d].count(s)) mask |= 1u << d;
    if (!(mask & 1u) && in_predecessor) ++halo;
    else ++along[mask];
  }
  const auto share = [&](uint64_t n) { return uint64_t(block_sectors * double(n) / double(base.size()) + 0.5); };
  for (unsigned mask = 0; mask < 8; ++mask) into.*(kBlockSectorsSharedAlong[mask]) = share(along[mask]);
  into.block_sectors_halo_x = share(halo);
}

// Block b's distinct sectors, run alone on a profile of its own.
inline std::unordered_set<uintptr_t> sectors_of_block(const KernelLaunch& k, uint64_t b) {
  Profile probe;
  probe.ticket_draw = TicketDraw::not_last;  // as the sampled blocks draw (sample_grid), leaving the counters alone
  KernelLaunch one = k;
  one.profile = &probe;
  this_thread_runner().run(one, block_coordinates(k, b));
  return probe.last_block_sectors();
}

// A profiled launch on a sample of its blocks. Edge blocks (the last in x, y or z of a dimension
// of several blocks, where tiles are partial) and interior blocks behave alike within their class in tiled kernels, so each class
// runs up to `per_class` evenly spread blocks and its counts are scaled by size / sampled. Exact
// when the blocks of a class do the same work; unique_global_sectors is then an overestimate,
// since data blocks share (weights) is counted once per block; the block_sectors_shared_* split says
// which data that is (sharing_split, reusing the sampled blocks' sectors where a probe is one of them).
// A block that draws a ticket (atomicInc) runs twice: drawing not the last (its count stands for the class
// less one in the ticket's period) and drawing the last (standing for the one that finishes a tile and runs
// its tail, e.g. a weight gradient summing its splits): the sampled blocks never draw a last ticket from
// memory, so without the second run the tails' work would be missing. The tail's extra sectors are charged
// as private (read once, by the tile's last block).
inline void sample_grid(const KernelLaunch& k, unsigned per_class) {
  std::vector<uint64_t> classes[2];  // interior, edge
  const uint64_t count = uint64_t(k.grid.x) * k.grid.y * k.grid.z;
  for (uint64_t b = 0; b < count; ++b) {
    const uint64_t x = b % k.grid.x, y = b / k.grid.x % k.grid.y, z = b / (uint64_t(k.grid.x) * k.grid.y);
    // A dimension of one block does not split the grid: all its blocks share its last index.
    const bool edge = (k.grid.x > 1 && x + 1 == k.grid.x) || (k.grid.y > 1 && y + 1 == k.grid.y) ||
                      (k.grid.z > 1 && z + 1 == k.grid.z);
    classes[edge].push_back(b);
  }
  Counters total;
  double block_sectors = 0, tail_sectors = 0;
  std::vector<std::pair<uint64_t, std::unordered_set<uintptr_t>>> ran;  // the sampled blocks' sectors
  for (const std::vector<uint64_t>& blocks : classes) {
    if (blocks.empty()) continue;
    const uint64_t n = std::min<uint64_t>(per_class, blocks.size());
    Profile sample, finishing;
    sample.ticket_draw = TicketDraw::not_last;
    finishing.ticket_draw = TicketDraw::last;
    KernelLaunch one = k, last = k;
    one.profile = &sample;
    last.profile = &finishing;
    uint64_t drawing = 0;  // sampled blocks that drew a ticket
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t b = blocks[i * blocks.size() / n];
      const uint64_t drawn = sample.tickets_drawn;
      this_thread_runner().run(one, block_coordinates(k, b));
      ran.emplace_back(b, sample.last_block_sectors());
      if (sample.tickets_drawn == drawn) continue;
      ++drawing;
      this_thread_runner().run(last, block_coordinates(k, b));
    }
    if (drawing > 0 && (drawing < n || sample.ticket_periods_differ || finishing.ticket_period != sample.ticket_period))
      throw KernelError(std::string("kernel `") + k.kernel + "`: its sampled blocks draw tickets unlike one another, so a "
                        "sample cannot say how many finish a tile; profile it with every block run (NINCC_EMU_PROFILE_SAMPLE=0)");
    const double scale = double(blocks.size()) / double(n);
    const double finish = drawing > 0 ? 1.0 / double(sample.ticket_period) : 0.0;  // the share that takes the tail
    add_blended(total, sample.counters, scale * (1.0 - finish), finishing.counters, scale * finish);
    tail_sectors += std::max(0.0, double(finishing.block_sectors) - double(sample.block_sectors)) * scale * finish;
    block_sectors += double(sample.block_sectors) * scale;
  }
  sharing_split(k, block_sectors, [&](uint64_t b) {
    for (const auto& [block, sectors] : ran)
      if (block == b) return sectors;
    return sectors_of_block(k, b);
  }, total);
  total.block_sectors_private += uint64_t(tail_sectors + 0.5);
  k.profile->counters = total;
}

// Runs every block of the grid; throws KernelError for a fault (with several workers, the fault
// of the earliest block in the order among those that faulted before the others stopped).
inline void run_grid(const KernelLaunch& k, const LaunchOptions& options) {
  check_launch_shape(k);
  if (t_runner) throw KernelError(std::string("kernel `") + k.kernel + "`: launched from inside a kernel");
  if (k.profile && options.sample_per_class > 0) return sample_grid(k, options.sample_per_class);
  GridRun run(k, options);
  // A profile is one OS thread's data: profiled launches run their blocks one after the other.
  const unsigned workers =
      k.profile ? 1u : unsigned(std::max<uint64_t>(1, std::min<uint64_t>(options.workers, run.count)));
  if (workers == 1) {
    BlockRunner& runner = this_thread_runner();
    // A profile keeps the sectors of the probe blocks as they run: running them again for
    // sharing_split would apply a kernel that updates in place (SGD) twice.
    std::vector<std::pair<uint64_t, std::unordered_set<uintptr_t>>> kept;
    const SharingProbes probes = sharing_probes(k);
    for (uint64_t p = 0; p < run.count; ++p) {
      if (p >= options.cut_short_after) throw KernelError(cut_short_message(k.kernel, options.cut_short_after));
      const uint3 c = run.block_at(p);
      runner.run(k, c);
      const int64_t b = int64_t(c.x + uint64_t(k.grid.x) * (c.y + uint64_t(k.grid.y) * c.z));
      if (k.profile && (b == int64_t(probes.base) || b == probes.predecessor || b == probes.far[0] ||
                        b == probes.far[1] || b == probes.far[2]))
        kept.emplace_back(uint64_t(b), k.profile->last_block_sectors());
    }
    if (k.profile)
      sharing_split(k, double(k.profile->block_sectors), [&](uint64_t b) {
        for (const auto& [block, sectors] : kept)
          if (block == b) return sectors;
        throw KernelError("sharing_split: a probe block did not run");  // cannot happen: every block ran
      }, k.profile->counters);
    return;
  }
  std::unique_ptr<pthread_t[]> helpers(new pthread_t[workers - 1]);
  unsigned started = 0;
  while (started < workers - 1 && pthread_create(&helpers[started], nullptr, &grid_worker, &run) == 0) ++started;
  run.work();  // with fewer helpers than asked for if the system refused some
  for (unsigned i = 0; i < started; ++i) pthread_join(helpers[i], nullptr);
  if (run.failed_at != UINT64_MAX) throw KernelError(run.failure);
}

// nincc::emu::launch("name", grid, block, dynamic_shared_bytes, [options,] kernel, args...):
// arguments convert to the kernel's parameter types once, as a CUDA launch copies them, and every
// emulated thread receives its own copy.
template <class... P, class... A>
void launch(const char* name, dim3 grid, dim3 block, size_t dynamic_shared_bytes, const LaunchOptions& options,
            void (*kernel)(P...), A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "the launch passes a different number of arguments than the kernel takes");
  static_assert((!std::is_reference_v<P> && ...), "kernel parameters are passed by value");
  struct Closure {
    void (*kernel)(P...);
    std::tuple<std::decay_t<P>...> args;
  };
  const Closure closure{kernel, std::tuple<std::decay_t<P>...>(static_cast<std::decay_t<P>>(args)...)};
  auto body = [](const void* c) {
    const Closure& self = *static_cast<const Closure*>(c);
    std::apply(self.kernel, self.args);
  };
  run_grid(KernelLaunch{name, grid, block, dynamic_shared_bytes, body, &closure, options.reverse_threads,
                        options.profile},
           options);
}

template <class... P, class... A>
void launch(const char* name, dim3 grid, dim3 block, size_t dynamic_shared_bytes, void (*kernel)(P...),
            A&&... args) {
  launch(name, grid, block, dynamic_shared_bytes, default_options(), kernel, std::forward<A>(args)...);
}

// ---- the extern "C" side: NinccEmuKernel descriptors

template <class... P>
constexpr const char* signature_of(void (*)(P...)) {
  return ::nincc::signature::Of<void(P...)>::value.c;
}

template <class T>
T read_parameter(const void* value) {
  T v;
  std::memcpy(&v, value, sizeof v);
  return v;
}

template <class... P, size_t... I>
void launch_from_parameters(const char* name, void (*kernel)(P...), const NinccEmuLaunch& l, void* const* params,
                            std::index_sequence<I...>) {
  LaunchOptions o;
  o.order = l.block_order == NINCC_EMU_REVERSE    ? BlockOrder::reverse
            : l.block_order == NINCC_EMU_SHUFFLED ? BlockOrder::shuffled
                                                  : BlockOrder::forward;
  o.seed = l.shuffle_seed;
  o.workers = l.workers;
  o.reverse_threads = l.reverse_threads != 0;
  // NINCC_EMU_PROFILE=FILE: each launch appends its counters to FILE as one JSON line (docs/profile.md),
  // running NINCC_EMU_PROFILE_SAMPLE (default 2) interior and as many edge blocks, scaled; 0: all blocks.
  // NINCC_EMU_CUT_SHORT=KERNEL:N: a launch of KERNEL runs its first N blocks and fails (tests of recovery).
  if (const char* cut = std::getenv("NINCC_EMU_CUT_SHORT")) {
    const char* colon = std::strchr(cut, ':');
    if (colon && std::strncmp(cut, name, size_t(colon - cut)) == 0 && name[colon - cut] == '\0')
      o.cut_short_after = std::strtoull(colon + 1, nullptr, 10);
  }
  const char* profile_path = std::getenv("NINCC_EMU_PROFILE");
  Profile profile;
  if (profile_path && profile_path[0]) {
    o.profile = &profile;
    const char* sample = std::getenv("NINCC_EMU_PROFILE_SAMPLE");
    o.sample_per_class = sample ? unsigned(std::strtoul(sample, nullptr, 10)) : 2u;
  }
  const auto started = std::chrono::steady_clock::now();
  launch(name, dim3(l.grid[0], l.grid[1], l.grid[2]), dim3(l.block[0], l.block[1], l.block[2]),
         l.dynamic_shared_bytes, o, kernel, read_parameter<std::decay_t<P>>(params[I])...);
  if (!o.profile) return;
  std::FILE* out = std::fopen(profile_path, "a");
  if (!out) throw KernelError(std::string("kernel `") + name + "`: cannot append to NINCC_EMU_PROFILE=" + profile_path);
  // What the emulation itself cost: `nincc profile` reports it, so a slow profile says which kernel made it slow.
  const double emulated_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  write_counters_json(out, name, l.grid, l.block, profile.counters, emulated_ms);
  std::fclose(out);
}

// The body of every descriptor's `launch`: no exception crosses the C boundary.
template <class... P>
int launch_descriptor(const char* name, void (*kernel)(P...), NinccEmuLaunch* l, void* const* params) noexcept {
  if (!l) return 1;
  try {
    if (l->param_count != sizeof...(P)) {
      std::snprintf(l->error, sizeof l->error,
                    "kernel `%s` takes %zu parameters (signature \"%s\") but the launch passes %u", name,
                    sizeof...(P), signature_of(kernel), l->param_count);
      return 1;
    }
    for (size_t i = 0; i < sizeof...(P); ++i)
      if (!params || !params[i]) {
        std::snprintf(l->error, sizeof l->error, "kernel `%s`: parameter %zu is a null pointer", name, i);
        return 1;
      }
    launch_from_parameters(name, kernel, *l, params, std::index_sequence_for<P...>{});
    l->error[0] = '\0';
    return 0;
  } catch (const std::exception& e) {
    std::snprintf(l->error, sizeof l->error, "%s", e.what());
  } catch (...) {
    std::snprintf(l->error, sizeof l->error, "kernel `%s`: unknown failure", name);
  }
  return 1;
}

}  // namespace emu
}  // namespace nincc

#pragma GCC visibility pop

// After a kernel's definition: exports `const NinccEmuKernel nincc_emu_<kernel>` (emu_abi.h).
#define NINCC_EXPORT(kernel)                                                                         \
  static int nincc_emu_launch_##kernel(NinccEmuLaunch* launch, void* const* params) {               \
    return ::nincc::emu::launch_descriptor(#kernel, &kernel, launch, params);                        \
  }                                                                                                  \
  extern "C" NINCC_EMU_EXPORTED const NinccEmuKernel nincc_emu_##kernel = {                         \
      #kernel, ::nincc::emu::signature_of(&kernel), &nincc_emu_launch_##kernel}

// Once per library: the identity the runtime checks after dlopen, as for the cpu library.
#define NINCC_LIBRARY(source_hash)                                                                   \
  extern "C" NINCC_EMU_EXPORTED const char* nincc_abi(void) { return NINCC_EMU_ABI; }               \
  extern "C" NINCC_EMU_EXPORTED const char* nincc_source_hash(void) { return source_hash; }         \
  static_assert(true, "")
