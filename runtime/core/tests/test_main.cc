// The core test executable (registered with ctest): runs every group, prints a summary and exits
// nonzero when any CHECK failed.
#include <cstdio>
#include <exception>

#include "check.h"
#include "fixture_artifact.h"

void runJsonTests();
void runModelTests();
void runPlanErrorTests();
void runGradientReducerTests();

namespace nincc_test {
int failures = 0;
}

int main() {
  struct Group {
    const char* name;
    void (*run)();
  };
  const Group groups[] = {{"json", runJsonTests}, {"model", runModelTests}, {"plan errors", runPlanErrorTests},
                         {"reducer", runGradientReducerTests}};
  for (const Group& group : groups) {
    int before = nincc_test::failures;
    try {
      group.run();
    } catch (const std::exception& e) {
      ++nincc_test::failures;
      std::fprintf(stderr, "%s: unexpected exception: %s\n", group.name, e.what());
    }
    std::printf("%-12s %s\n", group.name, nincc_test::failures == before ? "ok" : "FAILED");
  }
  nincc_test::removeFixtureDirs();
  if (nincc_test::failures) {
    std::printf("%d check(s) failed\n", nincc_test::failures);
    return 1;
  }
  std::printf("all core tests passed\n");
  return 0;
}
