// Temporary fixture artifacts: mkdtemp directories under $TMPDIR, removed at the end of main().
#include "fixture_artifact.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "check.h"

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

const char* fixtureLibrary() { return NINCC_FIXTURE_LIBRARY; }
const char* fixtureBadAbiLibrary() { return NINCC_FIXTURE_BAD_ABI_LIBRARY; }

std::string fixturePlanText() { return readFile(NINCC_FIXTURE_PLAN); }

std::string makeArtifactDir(const std::string& planText, const std::string& library) {
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
  return dir;
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
