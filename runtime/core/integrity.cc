// Checks of plan.json's integrity hashes: the plan's own, then each library's before dlopen.
#include "integrity.h"

#include <sys/stat.h>

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

void checkLibraryHash(const std::string& path, const std::string& device, const std::string& recordedHex,
                      const std::string& planFile) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0) return;
  std::string actual = sha256FileHex(path);
  if (actual != recordedHex)
    throw Error(path + ": the " + device + " kernel library's SHA-256 is " + actual + " but " + planFile +
                " records " + recordedHex + ": the library was changed or damaged after the build; rebuild the artifact");
}

}  // namespace nincc
