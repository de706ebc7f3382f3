// The block runner of the SIMT emulator: one fiber per CUDA thread of a block, resumed
// round-robin on the calling OS thread; __syncthreads barriers, warp-collective exchanges and
// thread exit, and the faults they detect (barrier and warp divergence, deadlock), each reported
// with kernel, block and thread. A thread that waits hands the OS thread straight to the next
// ready one; the scheduler (the launching stack) regains it only when none is ready.
#pragma once

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "fiber.h"
#include "profile.h"
#include "shared.h"
#include "types.h"

namespace nincc {
namespace emu NINCC_EMU_HIDDEN {

// A fault of emulated kernel code or of its launch, thrown out of the launch.
class KernelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What every block of one launch shares.
struct KernelLaunch {
  const char* kernel;
  dim3 grid, block;
  size_t dynamic_shared_bytes;
  void (*body)(const void* closure);  // runs the kernel, with its arguments, as the current thread
  const void* closure;
  bool reverse_threads;  // resume a block's threads last to first
  Profile* profile = nullptr;  // counts what the blocks do (profile.h); null: no counting
};

enum class Wait : unsigned char { ready, barrier, warp, exited };
enum class WarpOp : unsigned char { shuffle, vote, sync, mma, mma_bf16, ldmatrix };

inline const char* warp_op_name(WarpOp op) {
  switch (op) {
    case WarpOp::shuffle: return "a warp shuffle";
    case WarpOp::vote: return "a warp vote";
    case WarpOp::sync: return "sync_warp";
    case WarpOp::mma: return "mma.m16n8k8";
    case WarpOp::mma_bf16: return "mma.m16n8k16";
    case WarpOp::ldmatrix: return "ldmatrix";
  }
  return "a warp collective";
}

// A cp.async in flight: issued, its destination poisoned, landing at the wait that covers its group.
struct AsyncCopy {
  unsigned char* dst;
  const unsigned char* src;
  int bytes, src_bytes;
  int group;  // -1 until cp.async.commit_group closes the group
};

struct EmuThread {
  Context context;
  std::vector<AsyncCopy> copies;  // this thread's cp.async copies not yet landed
  int groups_committed;
  uint3 index;
  unsigned rank;  // x + X·(y + Y·z): the order in which CUDA packs threads into warps
  Wait wait;
  const char* file;  // where it waits
  int line;
};

// The largest per-lane payload of a warp collective: an mma's A (4), B (2) and C (4) words.
constexpr int kExchangeWords = 10;
using ExchangeSlot = const uint32_t (*)[kExchangeWords];

// A warp collective is a barrier over the lanes of one warp with a shared exchange slot: each
// lane deposits its words, waits until every lane has, then reads what it needs. Slots alternate
// by generation: a lane can only write generation g+2's slot after every lane arrived at g+1,
// i.e. after every lane finished reading g's, so no lane overwrites a value still to be read.
struct WarpState {
  uint32_t lanes_mask;  // lanes that exist: a block's last warp may be partial
  unsigned lanes, arrived, exited, generation;
  WarpOp op;
  const char* file;
  int line;
  uint32_t slot[2][32][kExchangeWords];
};

class BlockRunner;
inline thread_local BlockRunner* t_runner = nullptr;  // the runner of the block this OS thread runs

class BlockRunner {
 public:
  BlockRunner() = default;
  BlockRunner(const BlockRunner&) = delete;
  BlockRunner& operator=(const BlockRunner&) = delete;

  // Runs every thread of block `block_index` to completion; throws KernelError on a fault.
  void run(const KernelLaunch& launch, uint3 block_index);

  // --- what emulated threads ask, on their fibers
  const KernelLaunch& launch() const { return *launch_; }
  const uint3& thread_index() const { return current_->index; }
  const uint3& block_index() const { return block_index_; }
  unsigned rank() const { return current_->rank; }
  unsigned lane() const { return current_->rank & 31; }
  unsigned warp_lanes() const { return warps_[current_->rank >> 5].lanes; }
  bool lane_exists(int lane) const { return (warps_[current_->rank >> 5].lanes_mask >> lane) & 1; }
  SharedArena& shared() { return shared_; }
  EmuThread& current() { return *current_; }
  Profile* profile() const { return launch_->profile; }

  void sync_threads(const char* file, int line);
  // Deposits `count` words for this lane and waits for every lane of the warp; returns the slot,
  // which holds every lane's words until this lane's next collective.
  ExchangeSlot exchange(WarpOp op, const uint32_t* words, int count, const char* file, int line);
  // Ends the current thread and the whole launch with an error naming kernel, block and thread.
  [[noreturn]] void fail_text(const char* text);
  [[noreturn]] void fail(const char* format, ...) __attribute__((format(printf, 2, 3))) {
    char text[768];  // no heap objects on a stack that is about to be abandoned
    va_list args;
    va_start(args, format);
    std::vsnprintf(text, sizeof text, format, args);
    va_end(args);
    fail_text(text);
  }

 private:
  static void thread_main(void* self);
  [[noreturn]] void thread_exit();
  EmuThread* next_ready() const;
  // Suspends the current thread (already marked waiting) and resumes the next ready one.
  void yield() {
    EmuThread& me = *current_;
    EmuThread* next = next_ready();
    came_from_ = &me.context;
    current_ = next;  // whoever resumes `me` later sets current_ back to it
    switch_context(me.context, next ? next->context : scheduler_);
  }
  std::string where(const EmuThread* t) const;
  std::string deadlock_report() const;

  const KernelLaunch* launch_ = nullptr;
  uint3 block_index_{0, 0, 0};
  std::vector<EmuThread> threads_;
  std::vector<WarpState> warps_;
  EmuThread* current_ = nullptr;
  Context scheduler_;
  Context* came_from_ = nullptr;  // the context a new fiber was started from (fiber_started)
  StackPool stacks_;
  SharedArena shared_;
  unsigned live_ = 0, arrived_ = 0, exited_ = 0;  // arrived_: threads waiting at __syncthreads
  const EmuThread* first_exited_ = nullptr;
  const char* barrier_file_ = nullptr;
  int barrier_line_ = 0;
  bool failed_ = false;
  std::string error_;
};

inline BlockRunner& runner() {
  BlockRunner* r = t_runner;
  if (__builtin_expect(r == nullptr, 0)) {
    std::fputs("nincc emu: a device primitive was called outside a kernel launch\n", stderr);
    std::abort();
  }
  return *r;
}

inline void kernel_fault(const char* format, ...) {
  char text[768];
  va_list args;
  va_start(args, format);
  std::vsnprintf(text, sizeof text, format, args);
  va_end(args);
  runner().fail_text(text);
}

inline std::string BlockRunner::where(const EmuThread* t) const {
  char text[320];
  const KernelLaunch& k = *launch_;
  int n = std::snprintf(text, sizeof text, "kernel `%s` (grid (%u,%u,%u), block (%u,%u,%u)): block (%u,%u,%u)",
                        k.kernel, k.grid.x, k.grid.y, k.grid.z, k.block.x, k.block.y, k.block.z, block_index_.x,
                        block_index_.y, block_index_.z);
  if (t && n > 0 && size_t(n) < sizeof text)
    std::snprintf(text + n, sizeof text - n, " thread (%u,%u,%u)", t->index.x, t->index.y, t->index.z);
  return text;
}

inline void BlockRunner::fail_text(const char* text) {
  // The fiber's stack is abandoned here and destructors on it never run: error_ lives in the
  // runner, and the temporaries below are gone before the switch.
  if (!failed_) {
    failed_ = true;
    error_ = where(current_);
    error_ += ": ";
    error_ += text;
  }
  current_->wait = Wait::exited;
  came_from_ = &current_->context;
  leave_context(current_->context, scheduler_);
}

inline void BlockRunner::run(const KernelLaunch& launch, uint3 block_index) {
  launch_ = &launch;
  block_index_ = block_index;
  const dim3 b = launch.block;
  const unsigned n = b.x * b.y * b.z;
  stacks_.reserve(n);
  threads_.resize(n);
  for (unsigned r = 0; r < n; ++r) {
    EmuThread& t = threads_[r];
    t.index = uint3{r % b.x, (r / b.x) % b.y, r / (b.x * b.y)};
    t.rank = r;
    t.wait = Wait::ready;
    t.file = nullptr;
    t.line = 0;
    t.copies.clear();
    t.groups_committed = 0;
    prepare(t.context, stacks_.stack(r), stacks_.stack_size(), &BlockRunner::thread_main, this);
  }
  warps_.resize((n + 31) / 32);
  for (unsigned w = 0; w < warps_.size(); ++w) {
    WarpState& s = warps_[w];
    s.lanes = n - 32 * w < 32 ? n - 32 * w : 32;
    s.lanes_mask = s.lanes == 32 ? 0xffffffffu : (1u << s.lanes) - 1;
    s.arrived = s.exited = s.generation = 0;
  }
  live_ = n;
  arrived_ = exited_ = 0;
  first_exited_ = nullptr;
  failed_ = false;
  shared_.begin_block(launch.dynamic_shared_bytes);
  if (launch.profile) launch.profile->begin_block(n);

  struct Bind {  // t_runner names this runner while its fibers run, even if one throws out
    BlockRunner* saved;
    explicit Bind(BlockRunner* r) : saved(t_runner) { t_runner = r; }
    ~Bind() { t_runner = saved; }
  } bind(this);
  // The threads pass the OS thread among themselves; it comes back here when the block is done,
  // has faulted, or no thread is ready although some are alive: a deadlock.
  EmuThread& first = threads_[launch.reverse_threads ? n - 1 : 0];
  current_ = &first;
  came_from_ = &scheduler_;
  switch_context(scheduler_, first.context);
  current_ = nullptr;
  if (failed_) throw KernelError(error_);
  if (live_ > 0) throw KernelError(where(nullptr) + ": " + deadlock_report());
  if (launch.profile) launch.profile->end_block();
}

// The next ready thread after the current one in round-robin order (rank order, or reversed).
inline EmuThread* BlockRunner::next_ready() const {
  const unsigned n = unsigned(threads_.size());
  const unsigned at = current_->rank;
  for (unsigned step = 1; step < n; ++step) {
    const unsigned r = launch_->reverse_threads ? (at + n - step) % n : (at + step) % n;
    if (threads_[r].wait == Wait::ready) return const_cast<EmuThread*>(&threads_[r]);
  }
  return nullptr;
}

inline void BlockRunner::thread_main(void* self) {
  auto& r = *static_cast<BlockRunner*>(self);
  fiber_started(*r.came_from_);
  char fault[256] = "";
  try {
    r.launch_->body(r.launch_->closure);
  } catch (const std::exception& e) {
    std::snprintf(fault, sizeof fault, "%s", e.what());
  } catch (...) {
    std::snprintf(fault, sizeof fault, "an exception that is not a std::exception");
  }
  if (fault[0]) r.fail("the kernel threw: %s", fault);
  r.thread_exit();
}

// Exiting, like arriving, is checked in both orders — the thread that exits before others arrive
// at a barrier, and the one that arrives after another exited — so the fault does not depend on
// which thread the round-robin happens to run first.
inline void BlockRunner::thread_exit() {
  EmuThread& t = *current_;
  WarpState& w = warps_[t.rank >> 5];
  --live_;
  ++exited_;
  ++w.exited;
  if (!first_exited_) first_exited_ = &t;
  if (arrived_ > 0)
    fail("exited while %u thread(s) of its block wait at __syncthreads (%s:%d): barrier divergence (every thread "
         "of a block must reach every __syncthreads)",
         arrived_, barrier_file_, barrier_line_);
  if (w.arrived > 0)
    fail("exited while %u lane(s) of its warp wait at %s (%s:%d): warp divergence (every lane must take part)",
         w.arrived, warp_op_name(w.op), w.file, w.line);
  if (!t.copies.empty())
    fail("exited with %zu cp.async copies it never waited for (cp_async_wait_group/wait_all): their data "
         "would land at an unknown time",
         t.copies.size());
  t.wait = Wait::exited;
  EmuThread* next = next_ready();
  came_from_ = &t.context;
  current_ = next;
  leave_context(t.context, next ? next->context : scheduler_);
}

inline void BlockRunner::sync_threads(const char* file, int line) {
  EmuThread& t = *current_;
  if (exited_ > 0)
    fail("reached __syncthreads (%s:%d) after thread (%u,%u,%u) of its block exited: barrier divergence (every "
         "thread of a block must reach every __syncthreads)",
         file, line, first_exited_->index.x, first_exited_->index.y, first_exited_->index.z);
  if (arrived_ == 0) {
    barrier_file_ = file;
    barrier_line_ = line;
  }
#ifdef NINCC_EMU_CHECKS
  else if (line != barrier_line_ || std::strcmp(file, barrier_file_) != 0)
    fail("reached __syncthreads at %s:%d while %u thread(s) wait at the one at %s:%d: barrier divergence", file,
         line, arrived_, barrier_file_, barrier_line_);
#endif
  if (++arrived_ == live_) {  // the last to arrive releases the others and carries on
    arrived_ = 0;
    if (launch_->profile) ++launch_->profile->counters.barriers;
    for (EmuThread& o : threads_)
      if (o.wait == Wait::barrier) o.wait = Wait::ready;
    return;
  }
  t.wait = Wait::barrier;
  t.file = file;
  t.line = line;
  yield();
}

inline ExchangeSlot BlockRunner::exchange(WarpOp op, const uint32_t* words, int count, const char* file, int line) {
  EmuThread& t = *current_;
  const unsigned warp = t.rank >> 5, lane = t.rank & 31;
  WarpState& w = warps_[warp];
  if (w.exited > 0)
    fail("reached %s (%s:%d) after a lane of its warp exited: warp divergence (every lane must take part)",
         warp_op_name(op), file, line);
  if (w.arrived == 0) {
    w.op = op;
    w.file = file;
    w.line = line;
  } else if (w.op != op) {
    fail("reached %s (%s:%d) while %u lane(s) of its warp wait at %s (%s:%d): warp divergence", warp_op_name(op), file,
         line, w.arrived, warp_op_name(w.op), w.file, w.line);
  }
  const unsigned g = w.generation;
  std::memcpy(w.slot[g & 1][lane], words, sizeof(uint32_t) * size_t(count));
  if (++w.arrived == w.lanes) {
    w.arrived = 0;
    ++w.generation;
    for (unsigned l = 0; l < w.lanes; ++l) {
      EmuThread& o = threads_[warp * 32 + l];
      if (o.wait == Wait::warp) o.wait = Wait::ready;
    }
  } else {
    t.wait = Wait::warp;
    t.file = file;
    t.line = line;
    yield();
  }
  return w.slot[g & 1];
}

// No thread can run, yet some are alive: they wait for each other at different collectives.
// Lists each place threads wait, with how many and the first of them.
inline std::string BlockRunner::deadlock_report() const {
  struct Site {
    const char* what;
    const char* file;
    int line;
    unsigned count;
    const EmuThread* first;
  };
  std::vector<Site> sites;
  for (const EmuThread& t : threads_) {
    if (t.wait == Wait::exited) continue;
    const char* what = t.wait == Wait::barrier ? "__syncthreads" : warp_op_name(warps_[t.rank >> 5].op);
    bool known = false;
    for (Site& s : sites)
      if (std::strcmp(s.what, what) == 0 && s.file == t.file && s.line == t.line) {
        ++s.count;
        known = true;
      }
    if (!known) sites.push_back(Site{what, t.file, t.line, 1, &t});
  }
  std::string text = "deadlock: no thread can proceed:";
  for (size_t i = 0; i < sites.size() && i < 4; ++i) {
    const Site& s = sites[i];
    char line[256];
    std::snprintf(line, sizeof line, "%s %u thread(s) wait at %s (%s:%d), the first thread (%u,%u,%u)",
                  i ? ";" : "", s.count, s.what, s.file ? s.file : "?", s.line, s.first->index.x, s.first->index.y,
                  s.first->index.z);
    text += line;
  }
  text += " — the threads of a block or warp diverged between a barrier and a warp collective";
  return text;
}

}  // namespace emu
}  // namespace nincc
