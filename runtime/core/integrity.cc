// Checks of plan.json's integrity hashes: the plan's own, then each library's before dlopen.
#include "integrity.h"

#include <sys/stat.h>

#include <chrono>
#include <map>
#include <mutex>

#include "error.h"
#include "sha256.h"

namespace nincc {

bool isSha256Hex(const std::string& text) {
  if (text.size() != 64) return false;
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string planTextHash(const std::string& textWithZeros) { return sha256Hex(textWithZeros); }

void checkPlanHash(const std::string& text, const std::string& file, const std::string& recordedHex) {
  if (!isSha256Hex(recordedHex))
    throw Error(file + ": integrity.plan must be 64 lowercase hex digits (a SHA-256); the plan is damaged, rebuild the artifact");
  const std::string quoted = "\"" + recordedHex + "\"";
  size_t at = text.find(quoted);
  if (at == std::string::npos || text.find(quoted, at + 1) != std::string::npos)
    throw Error(file + ": the plan hash must occur exactly once in the file; the plan is damaged, rebuild the artifact");
  std::string zeroed = text;
  zeroed.replace(at + 1, 64, std::string(64, '0'));
  std::string actual = planTextHash(zeroed);
  if (actual != recordedHex)
    throw Error(file + ": the plan's SHA-256 is " + actual + " but it records " + recordedHex +
                ": plan.json was edited or damaged after the build; rebuild the artifact");
}

namespace {

// A library hashed earlier in this process, and the file as it was then. Loading the same artifact
// again (a server reloading a model, test/load-cycles.test.ts) would otherwise hash its library every
// time: about 4 ms of a 15 ms load for nin-fashion's 0.9 MB.
struct HashedFile {
  dev_t device;
  ino_t inode;
  off_t size;
  timespec modified;
  timespec changed;
  std::string hex;
};

bool sameTime(const timespec& a, const timespec& b) { return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec; }

bool sameFile(const HashedFile& h, const struct stat& info) {
  return h.device == info.st_dev && h.inode == info.st_ino && h.size == info.st_size &&
         sameTime(h.modified, info.st_mtim) && sameTime(h.changed, info.st_ctim);
}

// Any write, truncation, rename over it or chmod moves a file's ctime, which no user can set back. But
// file times advance in coarse ticks (a scheduler tick, several ms), so a write in the tick the hash was
// taken in can leave them equal: a hash is remembered only for a file whose times were already this
// far in the past when it was read (git's "racily clean" rule).
constexpr long kSettledSeconds = 2;

bool settledBefore(const struct stat& info, const std::chrono::system_clock::time_point& read) {
  const auto since = [&](const timespec& t) {
    return read - std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
                      std::chrono::seconds(t.tv_sec) + std::chrono::nanoseconds(t.tv_nsec)));
  };
  return since(info.st_mtim) > std::chrono::seconds(kSettledSeconds) &&
         since(info.st_ctim) > std::chrono::seconds(kSettledSeconds);
}

std::mutex hashedMutex;
long hashReads = 0;
std::map<std::string, HashedFile>& hashedFiles() {
  static std::map<std::string, HashedFile> files;
  return files;
}

// The file's SHA-256, from this process's memory when the file is the one hashed before.
std::string libraryHashHex(const std::string& path, const struct stat& info) {
  {
    std::lock_guard<std::mutex> lock(hashedMutex);
    auto found = hashedFiles().find(path);
    if (found != hashedFiles().end() && sameFile(found->second, info)) return found->second.hex;
  }
  const auto read = std::chrono::system_clock::now();
  std::string hex = sha256FileHex(path);
  HashedFile hashed{info.st_dev, info.st_ino, info.st_size, info.st_mtim, info.st_ctim, hex};
  struct stat after;
  std::lock_guard<std::mutex> lock(hashedMutex);
  ++hashReads;
  // Remembered only if the file did not change while it was read, and its times had settled.
  if (stat(path.c_str(), &after) == 0 && sameFile(hashed, after) && settledBefore(after, read))
    hashedFiles()[path] = std::move(hashed);
  else
    hashedFiles().erase(path);
  return hex;
}

}  // namespace

long libraryHashReads() {
  std::lock_guard<std::mutex> lock(hashedMutex);
  return hashReads;
}

void checkLibraryHash(const std::string& path, const std::string& device, const std::string& recordedHex,
                      const std::string& planFile) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0) return;
  std::string actual = libraryHashHex(path, info);
  if (actual != recordedHex)
    throw Error(path + ": the " + device + " kernel library's SHA-256 is " + actual + " but " + planFile +
                " records " + recordedHex + ": the library was changed or damaged after the build; rebuild the artifact");
}

}  // namespace nincc
