// The artifact's content hashes (docs/artifact.md, "Integrity"): plan.json records the SHA-256 of its own
// text and of each kernel library, so an edited or damaged file is refused before anything is loaded or run.
#pragma once
#include <string>

namespace nincc {

// The plan hash is the SHA-256 of plan.json with the recorded hash's 64 digits replaced by '0's.
std::string planTextHash(const std::string& textWithZeros);

// Throws naming `file` unless `recordedHex` is 64 hex digits that occur once in `text`, quoted, and
// are the hash of the text with them zeroed.
void checkPlanHash(const std::string& text, const std::string& file, const std::string& recordedHex);

// Throws naming the library and the plan unless the file's SHA-256 is `recordedHex`; a missing file
// passes (opening it reports that, with the rebuild hint).
// A file hashed before in this process and unchanged since (device, inode, size, mtime and ctime; see
// integrity.cc for the times' coarseness) is not read again.
void checkLibraryHash(const std::string& path, const std::string& device, const std::string& recordedHex,
                      const std::string& planFile);

bool isSha256Hex(const std::string& text);

// How many times this process has read a library to hash it (for tests of the memory above).
long libraryHashReads();

}  // namespace nincc
