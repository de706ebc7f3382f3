// ModelObject: the JS object load() returns, wrapping a nincc::Model. A run() holds it busy until
// its promise settles; every other call (and a second run) is refused meanwhile, because the
// worker thread is using the arena — but stageInputs, which stages the next batch during the run.
#pragma once
#include <napi.h>

#include <memory>

#include "model.h"

namespace nincc_binding {

class ModelObject : public Napi::ObjectWrap<ModelObject> {
 public:
  // Registers the class with this env; call once from the module's Init.
  static void defineClass(Napi::Env env);
  // A new JS object owning `model`.
  static Napi::Object wrap(Napi::Env env, std::unique_ptr<nincc::Model> model);

  explicit ModelObject(const Napi::CallbackInfo& info);
  // The finalizer when the JS object is collected without dispose(): frees the model then.
  ~ModelObject() override;

  // RunWorker calls this on the main thread when its run has finished, failed or not.
  void endRun() { busy_ = false; }

 private:
  Napi::Value info(const Napi::CallbackInfo& info);
  Napi::Value run(const Napi::CallbackInfo& info);
  Napi::Value runInline(const Napi::CallbackInfo& info);
  Napi::Value setInput(const Napi::CallbackInfo& info);
  Napi::Value stageInputs(const Napi::CallbackInfo& info);
  Napi::Value discardStaged(const Napi::CallbackInfo& info);
  Napi::Value getOutput(const Napi::CallbackInfo& info);
  Napi::Value read(const Napi::CallbackInfo& info);
  Napi::Value write(const Napi::CallbackInfo& info);
  Napi::Value dispose(const Napi::CallbackInfo& info);
  Napi::Value timeLaunches(const Napi::CallbackInfo& info);
  Napi::Value launchTimes(const Napi::CallbackInfo& info);

  // The model, or a clear error when it is busy with a run or was disposed.
  nincc::Model& usableModel(const char* call);
  // Frees the model and tells V8 its arena is gone.
  void releaseModel();

  // The arena's resident bytes, reported to V8 as external memory so that a dropped model's size
  // drives garbage collection (and so its finalizer) like a JS allocation of that size would.
  int64_t externalBytes_ = 0;

  std::unique_ptr<nincc::Model> model_;
  bool busy_ = false;
};

}  // namespace nincc_binding
