// Temporary artifact directories for the tests: the fixture plan.json (optionally edited) next to
// a copy of a fixture kernel library named kernels.cpu.so. Paths come from CMake definitions.
#pragma once
#include <string>
#include <vector>

namespace nincc_test {

std::string fixturePlanText();

// A fresh directory holding `planText` as plan.json and `library` as kernels.cpu.so (skipped
// when library is empty), the plan sealed unless `seal` is false. Removed by removeFixtureDirs().
std::string makeArtifactDir(const std::string& planText, const std::string& library, bool seal = true);
void removeFixtureDirs();

// Records in DIR/plan.json the SHA-256 of its libraries and of itself, as `nincc build` does, so that an
// edited fixture reaches the check under test. Leaves a plan that is not a JSON object as it is.
void sealArtifactDir(const std::string& dir);

// `text` with the one occurrence of `from` replaced; reports a failure when it does not occur once.
std::string replaceOnce(const std::string& text, const std::string& from, const std::string& to);

std::string readFileForTest(const std::string& path);
void writeFileForTest(const std::string& path, const std::string& bytes);

const char* fixtureLibrary();
const char* fixtureBadAbiLibrary();

}  // namespace nincc_test
