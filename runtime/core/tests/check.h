// The core tests' whole framework: CHECK macros that print file:line and count failures, and
// CHECK_THROWS_WITH for the exact wording of errors. main() exits nonzero when anything failed.
#pragma once
#include <cstdio>
#include <string>

namespace nincc_test {

extern int failures;

inline void report(const char* file, int line, const std::string& what) {
  ++failures;
  std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
}

}  // namespace nincc_test

#define CHECK(condition)                                                   \
  do {                                                                     \
    if (!(condition)) nincc_test::report(__FILE__, __LINE__, #condition); \
  } while (0)

#define CHECK_EQ(actual, expected)                                                          \
  do {                                                                                      \
    auto actualValue_ = (actual);                                                           \
    auto expectedValue_ = (expected);                                                       \
    if (!(actualValue_ == expectedValue_))                                                  \
      nincc_test::report(__FILE__, __LINE__,                                                \
                         std::string(#actual " == " #expected ", got ") +                   \
                             std::to_string(actualValue_) + " vs " + std::to_string(expectedValue_)); \
  } while (0)

#define CHECK_STR_EQ(actual, expected)                                                        \
  do {                                                                                        \
    std::string actualValue_ = (actual);                                                      \
    std::string expectedValue_ = (expected);                                                  \
    if (actualValue_ != expectedValue_)                                                       \
      nincc_test::report(__FILE__, __LINE__,                                                  \
                         std::string(#actual "\n  got:      ") + actualValue_ +               \
                             "\n  expected: " + expectedValue_);                              \
  } while (0)

// Runs `statement`, which must throw a std::exception whose message contains `fragment`.
#define CHECK_THROWS_WITH(statement, fragment)                                                   \
  do {                                                                                           \
    std::string fragment_ = (fragment);                                                          \
    try {                                                                                        \
      statement;                                                                                 \
      nincc_test::report(__FILE__, __LINE__, std::string(#statement " did not throw"));          \
    } catch (const std::exception& error_) {                                                     \
      if (std::string(error_.what()).find(fragment_) == std::string::npos)                       \
        nincc_test::report(__FILE__, __LINE__,                                                   \
                           std::string(#statement " threw\n  \"") + error_.what() +               \
                               "\"\n  which lacks \"" + fragment_ + "\"");                       \
    }                                                                                            \
  } while (0)

// Runs `statement`, which must throw with exactly this message.
#define CHECK_THROWS_EXACTLY(statement, message)                                                \
  do {                                                                                          \
    std::string message_ = (message);                                                           \
    try {                                                                                       \
      statement;                                                                                \
      nincc_test::report(__FILE__, __LINE__, std::string(#statement " did not throw"));         \
    } catch (const std::exception& error_) {                                                    \
      if (message_ != error_.what())                                                            \
        nincc_test::report(__FILE__, __LINE__,                                                  \
                           std::string(#statement " threw\n  got:      ") + error_.what() +     \
                               "\n  expected: " + message_);                                    \
    }                                                                                           \
  } while (0)
