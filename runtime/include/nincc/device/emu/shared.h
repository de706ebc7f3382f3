// Shared memory of the SIMT emulator: one arena per block (the dynamic part, then every
// NINCC_SHARED declaration in the order threads first reach it), poisoned at block start, and
// the bounds-checked array types NINCC_SHARED yields in NINCC_EMU_CHECKS builds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>
#include <vector>

#include "config.h"

#ifdef NINCC_EMU_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace nincc {
namespace emu NINCC_EMU_HIDDEN {

// Stops the current emulated thread with an error naming kernel, block and thread (block.h).
[[noreturn]] inline void kernel_fault(const char* format, ...) __attribute__((format(printf, 1, 2)));

class SharedArena {
 public:
  static constexpr size_t kStaticLimit = 48 * 1024;   // nvcc rejects more static __shared__
  static constexpr size_t kDynamicLimit = 227 * 1024; // the most a block may have (sm_90, opt-in)
  static constexpr size_t kGap = 32;                  // between allocations; ASan poisons it
  static constexpr size_t kMaxDeclarations = 64;
  // Fresh shared memory reads as all-one bytes: NaN as a float, -1 as an int, so a kernel that
  // reads what no thread wrote (a missing barrier) gets a result that fails its test, the same
  // one in every block order, instead of a stale value from the previous block.
  static constexpr unsigned char kPoison = 0xFF;

  SharedArena() {
    capacity_ = kDynamicLimit + kStaticLimit + (kMaxDeclarations + 1) * (kGap + 16);
    storage_ = static_cast<unsigned char*>(std::aligned_alloc(64, (capacity_ + 63) / 64 * 64));
    if (!storage_) throw std::bad_alloc();
    declarations_.reserve(kMaxDeclarations);  // no reallocation while fibers run
  }
  SharedArena(const SharedArena&) = delete;
  SharedArena& operator=(const SharedArena&) = delete;
  ~SharedArena() {
#ifdef NINCC_EMU_ASAN
    __asan_unpoison_memory_region(storage_, capacity_);
#endif
    std::free(storage_);
  }

  void begin_block(size_t dynamic_bytes) {
    declarations_.clear();
    static_bytes_ = 0;
    dynamic_bytes_ = dynamic_bytes;
    used_ = align_up(dynamic_bytes, 16) + kGap;
#ifdef NINCC_EMU_ASAN
    __asan_poison_memory_region(storage_, capacity_);  // every byte not handed out is a redzone
    __asan_unpoison_memory_region(storage_, dynamic_bytes);
#endif
    std::memset(storage_, kPoison, dynamic_bytes);
  }

  unsigned char* dynamic() const { return storage_; }
  size_t dynamic_bytes() const { return dynamic_bytes_; }

  // The storage of one NINCC_SHARED declaration (identified by the address of its static tag):
  // the first thread of the block to reach it allocates, every other thread gets the same bytes.
  void* declare(const void* tag, size_t bytes, size_t align, const char* name, const char* file, int line) {
    for (const Declaration& d : declarations_)
      if (d.tag == tag) return storage_ + d.offset;
    if (declarations_.size() == kMaxDeclarations)
      kernel_fault("more than %zu shared-memory declarations in one kernel", kMaxDeclarations);
    if (static_bytes_ + bytes > kStaticLimit)
      kernel_fault("`%s` (%s:%d) brings the kernel's static shared memory to %zu bytes; CUDA allows %zu per kernel "
                   "(use NINCC_DYNAMIC_SHARED beyond that)",
                   name, file, line, static_bytes_ + bytes, kStaticLimit);
    if (dynamic_bytes_ + static_bytes_ + bytes > kDynamicLimit)
      kernel_fault("`%s` (%s:%d) brings the kernel's static and dynamic shared memory to %zu bytes; a block may have %zu",
                   name, file, line, dynamic_bytes_ + static_bytes_ + bytes, kDynamicLimit);
    const size_t offset = align_up(used_, align < 16 ? 16 : align);
    declarations_.push_back(Declaration{tag, offset, bytes});
    static_bytes_ += bytes;
    used_ = offset + bytes + kGap;
#ifdef NINCC_EMU_ASAN
    __asan_unpoison_memory_region(storage_ + offset, bytes);
#endif
    std::memset(storage_ + offset, kPoison, bytes);
    return storage_ + offset;
  }

  // For checked vector accesses: when p points into this block's shared memory, [p, p + bytes)
  // must lie inside one declaration (or the dynamic part). Global memory is ASan's business.
  bool contains(const void* p) const {
    auto* b = static_cast<const unsigned char*>(p);
    return b >= storage_ && b < storage_ + capacity_;
  }
  bool inside_one_allocation(const void* p, size_t bytes) const {
    const size_t at = size_t(static_cast<const unsigned char*>(p) - storage_);
    if (at + bytes <= dynamic_bytes_) return true;
    for (const Declaration& d : declarations_)
      if (at >= d.offset && at + bytes <= d.offset + d.bytes) return true;
    return false;
  }

 private:
  struct Declaration {
    const void* tag;
    size_t offset, bytes;
  };
  static size_t align_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

  unsigned char* storage_ = nullptr;
  size_t capacity_ = 0, used_ = 0, static_bytes_ = 0, dynamic_bytes_ = 0;
  std::vector<Declaration> declarations_;
};

#ifdef NINCC_EMU_CHECKS
// Where a checked shared array was declared, for the out-of-bounds report.
struct SharedName {
  const char* name;
  const char* file;
  int line;
};

template <class I>
inline bool index_outside(I i, size_t count) {
  static_assert(std::is_integral_v<I> || std::is_enum_v<I>, "shared arrays are indexed by integers");
  if constexpr (std::is_signed_v<I>) {
    if (i < 0) return true;
  }
  return static_cast<unsigned long long>(i) >= count;
}

// A row of a checked 2-D shared array.
template <class T>
class SharedRow {
 public:
  SharedRow(T* data, long long row, size_t cols, size_t rows, const SharedName* where)
      : data_(data), row_(row), cols_(cols), rows_(rows), where_(where) {}
  template <class I>
  T& operator[](I col) const {
    if (index_outside(col, cols_))
      kernel_fault("shared-memory index [%lld][%lld] is out of bounds for `%s` [%zu][%zu] (declared at %s:%d)", row_,
                   static_cast<long long>(col), where_->name, rows_, cols_, where_->file, where_->line);
    return data_[col];
  }
  operator T*() const { return data_; }

 private:
  T* data_;
  long long row_;
  size_t cols_, rows_;
  const SharedName* where_;
};

// NINCC_SHARED in checks builds: indexes like the array it stands for, and faults on an index
// outside it. It converts to T* for pointer arithmetic, which is then unchecked (except by ASan,
// which sees the gaps between declarations as redzones, and by the checked vector accesses).
template <class T>
class SharedArray {
 public:
  SharedArray(void* data, size_t count, const char* name, const char* file, int line)
      : data_(static_cast<T*>(data)), count_(count), where_{name, file, line} {}
  template <class I>
  T& operator[](I i) const {
    if (index_outside(i, count_))
      kernel_fault("shared-memory index %lld is out of bounds for `%s` [%zu] (declared at %s:%d)",
                   static_cast<long long>(i), where_.name, count_, where_.file, where_.line);
    return data_[i];
  }
  operator T*() const { return data_; }
  size_t size() const { return count_; }

 private:
  T* data_;
  size_t count_;
  SharedName where_;
};

template <class T, size_t Cols>
class SharedArray2D {
 public:
  SharedArray2D(void* data, size_t rows, const char* name, const char* file, int line)
      : data_(static_cast<T*>(data)), rows_(rows), where_{name, file, line} {}
  template <class I>
  SharedRow<T> operator[](I row) const {
    if (index_outside(row, rows_))
      kernel_fault("shared-memory row %lld is out of bounds for `%s` [%zu][%zu] (declared at %s:%d)",
                   static_cast<long long>(row), where_.name, rows_, Cols, where_.file, where_.line);
    return SharedRow<T>(data_ + static_cast<size_t>(row) * Cols, static_cast<long long>(row), Cols, rows_, &where_);
  }

 private:
  T* data_;
  size_t rows_;
  SharedName where_;
};
#endif

}  // namespace emu
}  // namespace nincc
