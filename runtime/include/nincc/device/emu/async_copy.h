// The emulator's cp.async: a copy poisons its shared-memory destination when it is issued and lands
// at the wait that covers its group, so a read before the wait sees the poison (NaN) every time,
// not only when a GPU happens to be slow. Included by device.h inside its hidden-visibility region.
#pragma once

#include <cstdint>
#include <cstring>

#include "block.h"

namespace nincc {
namespace emu {

inline void issue_async_copy(void* dst, const void* src, int bytes, int src_bytes, const char* what,
                             const char* file, int line) {
  BlockRunner& r = runner();
  if (src_bytes < 0 || src_bytes > bytes)
    r.fail("%s (%s:%d): src-size %d is outside 0..%d", what, file, line, src_bytes, bytes);
  if (reinterpret_cast<uintptr_t>(dst) % unsigned(bytes) != 0 || reinterpret_cast<uintptr_t>(src) % unsigned(bytes) != 0)
    r.fail("%s (%s:%d): source %p and destination %p must both be %d-byte aligned", what, file, line, src, dst,
           bytes);
  if (!r.shared().contains(dst) || !r.shared().inside_one_allocation(dst, size_t(bytes)))
    r.fail("%s (%s:%d): the %d destination bytes at %p are not inside one shared-memory declaration", what, file,
           line, bytes, dst);
  if (r.shared().contains(src))
    r.fail("%s (%s:%d): the source %p is shared memory; cp.async copies from global memory", what, file, line, src);
  std::memset(dst, SharedArena::kPoison, size_t(bytes));
  r.current().copies.push_back(AsyncCopy{static_cast<unsigned char*>(dst), static_cast<const unsigned char*>(src),
                                         bytes, src_bytes, -1});
  // Counted like the load + store it replaces: its global sectors (none for a pure zero fill) and, as a
  // shared store at the issue, the wavefronts and bank conflicts of writing all `bytes` (the zero fill too).
  if (Profile* profile = r.profile()) {
    if (src_bytes > 0) profile->record(Space::async_copy_global, file, line, r.rank(), src, unsigned(src_bytes));
    profile->record(Space::shared_store, file, line, r.rank(), dst, unsigned(bytes));
  }
}

// Lands, in issue order, every committed copy of this thread except those of its `in_flight` most
// recently committed groups.
inline void land_async_copies(int in_flight) {
  EmuThread& t = runner().current();
  const int first_kept = t.groups_committed - in_flight;
  size_t kept = 0;
  for (size_t i = 0; i < t.copies.size(); ++i) {
    const AsyncCopy& c = t.copies[i];
    if (c.group >= 0 && c.group < first_kept) {
      if (c.src_bytes > 0) std::memcpy(c.dst, c.src, size_t(c.src_bytes));
      std::memset(c.dst + c.src_bytes, 0, size_t(c.bytes - c.src_bytes));  // src-size's zero fill
    } else {
      t.copies[kept++] = c;
    }
  }
  t.copies.resize(kept);
}

}  // namespace emu

template <int Bytes>
inline void cp_async_ca(void* dst, const void* src, int src_bytes = Bytes, const char* file = __builtin_FILE(),
                        int line = __builtin_LINE()) {
  static_assert(Bytes == 4 || Bytes == 8 || Bytes == 16, "cp.async.ca copies 4, 8 or 16 bytes");
  emu::issue_async_copy(dst, src, Bytes, src_bytes, "cp.async.ca", file, line);
}
inline void cp_async_cg(void* dst, const void* src, int src_bytes = 16, const char* file = __builtin_FILE(),
                        int line = __builtin_LINE()) {
  emu::issue_async_copy(dst, src, 16, src_bytes, "cp.async.cg", file, line);
}
// cp.async.commit_group: the copies issued since the last commit form the next group (maybe empty).
inline void cp_async_commit() {
  emu::EmuThread& t = emu::runner().current();
  for (emu::AsyncCopy& c : t.copies)
    if (c.group < 0) c.group = t.groups_committed;
  ++t.groups_committed;
}
template <int N>
inline void cp_async_wait_group() {
  static_assert(N >= 0, "cp.async.wait_group takes a count of groups");
  emu::land_async_copies(N);
}
// cp.async.wait_all: commit_group, then wait_group 0 (PTX ISA).
inline void cp_async_wait_all() {
  cp_async_commit();
  emu::land_async_copies(0);
}

}  // namespace nincc
