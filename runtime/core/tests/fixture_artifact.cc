// Temporary fixture artifacts: mkdtemp directories under $TMPDIR, removed at the end of main().
#include "fixture_artifact.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "check.h"
#include "integrity.h"
#include "json.h"
#include "plan.h"
#include "sha256.h"

namespace nincc_test {

namespace {

std::vector<std::string> createdDirs;

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    std::exit(2);
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

void writeFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(2);
  }
}

}  // namespace

std::string readFileForTest(const std::string& path) { return readFile(path); }
void writeFileForTest(const std::string& path, const std::string& bytes) { writeFile(path, bytes); }

const char* fixtureLibrary() { return NINCC_FIXTURE_LIBRARY; }
const char* fixtureBadAbiLibrary() { return NINCC_FIXTURE_BAD_ABI_LIBRARY; }

std::string fixturePlanText() { return readFile(NINCC_FIXTURE_PLAN); }

std::string makeArtifactDir(const std::string& planText, const std::string& library, bool seal) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/nincc-core-test-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (!mkdtemp(buffer.data())) {
    std::perror("mkdtemp");
    std::exit(2);
  }
  std::string dir = buffer.data();
  createdDirs.push_back(dir);
  writeFile(dir + "/plan.json", planText);
  // A copy, not a link: each directory must be a distinct file for dlopen's handle cache.
  if (!library.empty()) writeFile(dir + "/kernels.cpu.so", readFile(library));
  if (seal) sealArtifactDir(dir);
  return dir;
}

void sealArtifactDir(const std::string& dir) {
  std::string text = readFile(dir + "/plan.json");
  size_t brace = text.find_first_not_of(" \t\r\n");
  if (brace == std::string::npos || text[brace] != '{') return;  // not an object: the loader's own error
  std::string libraries;
  try {
    nincc::Json plan = nincc::parseJson(text, "plan.json");
    const nincc::Json* list = plan.find("libraries");
    if (!list || !list->isObject()) return;
    for (const auto& member : list->members()) {
      if (!member.second.isString()) return;
      std::string path = nincc::joinPath(dir, member.second.asString());
      std::string hash = std::ifstream(path).good() ? nincc::sha256FileHex(path) : nincc::sha256Hex("");
      libraries += (libraries.empty() ? "\"" : ", \"") + member.first + "\": \"" + hash + "\"";
    }
  } catch (const std::exception&) {
    return;  // malformed on purpose: the loader reports it
  }
  std::string zeros(64, '0');
  std::string rest = text.substr(brace + 1);
  size_t next = rest.find_first_not_of(" \t\r\n");
  bool emptyObject = next == std::string::npos || rest[next] == '}';
  std::string sealed = text.substr(0, brace + 1) + "\n  \"integrity\": { \"plan\": \"" + zeros +
                       "\", \"libraries\": { " + libraries + " } }" + (emptyObject ? "" : ",") + rest;
  size_t at = sealed.find(zeros);
  sealed.replace(at, 64, nincc::planTextHash(sealed));
  writeFile(dir + "/plan.json", sealed);
}

void removeFixtureDirs() {
  for (const std::string& dir : createdDirs) {
    unlink((dir + "/plan.json").c_str());
    unlink((dir + "/kernels.cpu.so").c_str());
    rmdir(dir.c_str());
  }
  createdDirs.clear();
}

std::string replaceOnce(const std::string& text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  if (at == std::string::npos || text.find(from, at + 1) != std::string::npos) {
    report(__FILE__, __LINE__, "fixture edit: \"" + from + "\" must occur exactly once");
    return text;
  }
  return text.substr(0, at) + to + text.substr(at + from.size());
}

}  // namespace nincc_test
