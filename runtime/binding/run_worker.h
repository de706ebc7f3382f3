// RunWorker: one Model::run on libuv's thread pool, settling a promise on the main thread.
#pragma once
#include <napi.h>

#include <exception>
#include <optional>
#include <string>

#include "model.h"
#include "model_object.h"
#include "mpi_binding.h"

namespace nincc_binding {

class RunWorker : public Napi::AsyncWorker {
 public:
  RunWorker(Napi::Env env, Napi::Object self, ModelObject& owner, nincc::Model& model,
            std::string program, int64_t n, nincc::ScalarValues scalars, uint64_t seed,
            std::optional<ReduceJob> reduce);

  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& error) override;

 private:
  // Keeps the JS model object (and so the Model) alive while the thread uses it.
  Napi::ObjectReference self_;
  ModelObject& owner_;
  nincc::Model& model_;
  std::string program_;
  int64_t n_;
  nincc::ScalarValues scalars_;
  uint64_t seed_;
  // The gradients to reduce across ranks during and after the run (docs/distributed.md), if any.
  std::optional<ReduceJob> reduce_;
  Napi::Promise::Deferred deferred_;
  // Caught on the worker thread, converted to a JS error on the main thread.
  std::exception_ptr failure_;
};

}  // namespace nincc_binding
