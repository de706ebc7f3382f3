// Temporary artifact directories for the tests: the fixture plan.json (optionally edited) next to
// a copy of a fixture kernel library named kernels.cpu.so. Paths come from CMake definitions.
#pragma once
#include <string>
#include <vector>

namespace nincc_test {

std::string fixturePlanText();

// A fresh directory holding `planText` as plan.json and `library` as kernels.cpu.so (skipped
// when library is empty). Removed by removeFixtureDirs() at the end of the run.
std::string makeArtifactDir(const std::string& planText, const std::string& library);
void removeFixtureDirs();

// `text` with the one occurrence of `from` replaced; reports a failure when it does not occur once.
std::string replaceOnce(const std::string& text, const std::string& from, const std::string& to);

const char* fixtureLibrary();
const char* fixtureBadAbiLibrary();

}  // namespace nincc_test
