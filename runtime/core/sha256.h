// SHA-256 (FIPS 180-4) of bytes in memory or of a file, as lowercase hex: the content hashes that tie
// plan.json to itself and to its kernel library (docs/artifact.md, "Integrity").
#pragma once
#include <string>

namespace nincc {

std::string sha256Hex(const std::string& bytes);

// The file's hash; throws naming the file when it cannot be read.
std::string sha256FileHex(const std::string& path);

}  // namespace nincc
