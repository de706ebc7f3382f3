// nincc::Error: the one exception type the runtime core throws for bad input, bad artifacts and
// failed system calls. The core never exits or aborts on bad input; callers (ctest, the N-API
// binding) decide how to report it.
#pragma once
#include <stdexcept>
#include <string>

namespace nincc {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace nincc
