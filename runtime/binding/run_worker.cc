// RunWorker: the thread side catches everything (no JS may be touched there); the main-thread
// side releases the busy flag and settles the promise.
#include "run_worker.h"

#include "js_errors.h"

namespace nincc_binding {

RunWorker::RunWorker(Napi::Env env, Napi::Object self, ModelObject& owner, nincc::Model& model,
                     std::string program, int64_t n, nincc::ScalarValues scalars, uint64_t seed,
                     std::optional<ReduceJob> reduce)
    : Napi::AsyncWorker(env, "nincc.run"),
      self_(Napi::Persistent(self)),
      owner_(owner),
      model_(model),
      program_(std::move(program)),
      n_(n),
      scalars_(std::move(scalars)),
      seed_(seed),
      reduce_(std::move(reduce)),
      deferred_(Napi::Promise::Deferred::New(env)) {}

void RunWorker::Execute() {
  try {
    if (reduce_)
      nincc::runAndReduce(model_, *reduce_->collective, program_, n_, scalars_, seed_, reduce_->request);
    else
      model_.run(program_, n_, scalars_, seed_);
  } catch (...) {
    failure_ = std::current_exception();
  }
}

void RunWorker::OnOK() {
  owner_.endRun();
  if (failure_)
    deferred_.Reject(toJsError(Env(), failure_).Value());
  else
    deferred_.Resolve(Env().Undefined());
}

// Only reached if node-addon-api itself reports a failure (Execute never calls SetError).
void RunWorker::OnError(const Napi::Error& error) {
  owner_.endRun();
  deferred_.Reject(error.Value());
}

}  // namespace nincc_binding
