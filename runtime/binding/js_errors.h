// How C++ failures reach JavaScript. toJsError (addon.cc) is the one place a C++ exception becomes
// a JS error; `guarded` wraps every synchronous binding call in it, and RunWorker hands it the
// exception a worker thread caught.
#pragma once
#include <napi.h>

#include <exception>
#include <utility>

#include "error.h"

namespace nincc_binding {

// A JS argument of the wrong type or range; becomes a TypeError.
class ArgumentError : public nincc::Error {
 public:
  using nincc::Error::Error;
};

Napi::Error toJsError(Napi::Env env, std::exception_ptr failure);

template <typename Fn>
Napi::Value guarded(Napi::Env env, Fn&& call) {
  try {
    return call();
  } catch (const Napi::Error&) {
    throw;  // already a JS error (raised by node-addon-api itself)
  } catch (...) {
    throw toJsError(env, std::current_exception());
  }
}

}  // namespace nincc_binding
