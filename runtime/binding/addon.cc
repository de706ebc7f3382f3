// The nincc N-API addon: devices(), load(dir, device), cudaGpuName(), hostMemory(), mpi and nccl (mpi_binding.cc) and the one place where C++ exceptions
// become JS errors. Thin by design: runtime/core does the work, runtime/*.ts the friendly checks.
#include <napi.h>

#include <new>

#include "cuda_device.h"
#include "device.h"
#include "host_device.h"
#include "js_args.h"
#include "js_errors.h"
#include "model.h"
#include "model_object.h"
#include "mpi_binding.h"

namespace nincc_binding {

Napi::Error toJsError(Napi::Env env, std::exception_ptr failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const ArgumentError& e) {
    return Napi::TypeError::New(env, e.what());
  } catch (const nincc::Error& e) {
    Napi::Error error = Napi::Error::New(env, e.what());
    error.Set("code", Napi::String::New(env, "ERR_NINCC_RUNTIME"));
    return error;
  } catch (const std::bad_alloc&) {
    return Napi::Error::New(env, "nincc runtime: out of memory");
  } catch (const std::exception& e) {
    return Napi::Error::New(env, std::string("nincc runtime: ") + e.what());
  } catch (...) {
    return Napi::Error::New(env, "nincc runtime: unknown C++ exception");
  }
}

namespace {

// devices() -> string[]: "cpu", and "cuda" where libcuda.so.1 loads.
Napi::Value devices(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    std::vector<std::string> names = nincc::availableDevices();
    Napi::Array array = Napi::Array::New(info.Env(), names.size());
    for (size_t i = 0; i < names.size(); ++i) array.Set(uint32_t(i), names[i]);
    return array;
  });
}

// load(dir, device) -> NativeModel. Synchronous: it reads one JSON file and dlopens one library.
Napi::Value load(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    std::string dir = stringArg(info, 0, "dir");
    std::string device = stringArg(info, 1, "device");
    return ModelObject::wrap(info.Env(), nincc::Model::load(dir, device));
  });
}

// cudaGpuName() -> the name of the GPU the cuda device opens (cuDeviceGetName); throws why not without one.
Napi::Value cudaGpuName(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value { return Napi::String::New(info.Env(), nincc::chosenGpuName()); });
}

// hostMemory() -> { liveBytes, liveAllocations, reclaimedAtTeardown } of the cpu and emu devices.
Napi::Value hostMemory(const Napi::CallbackInfo& info) {
  nincc::HostMemoryStats stats = nincc::hostMemoryStats();
  Napi::Object object = Napi::Object::New(info.Env());
  object.Set("liveBytes", Napi::Number::New(info.Env(), double(stats.liveBytes)));
  object.Set("liveAllocations", Napi::Number::New(info.Env(), double(stats.liveAllocations)));
  object.Set("reclaimedAtTeardown", Napi::Number::New(info.Env(), double(stats.reclaimedAtTeardown)));
  return object;
}

}  // namespace

Napi::Object initAddon(Napi::Env env, Napi::Object exports) {
  ModelObject::defineClass(env);
  exports.Set("devices", Napi::Function::New<devices>(env, "devices"));
  exports.Set("load", Napi::Function::New<load>(env, "load"));
  exports.Set("cudaGpuName", Napi::Function::New<cudaGpuName>(env, "cudaGpuName"));
  exports.Set("hostMemory", Napi::Function::New<hostMemory>(env, "hostMemory"));
  exports.Set("abi", Napi::String::New(env, NINCC_CPU_ABI));
  exports.Set("mpi", mpiObject(env));
  exports.Set("nccl", ncclObject(env));
  return exports;
}

}  // namespace nincc_binding

// The macro pastes its argument into an identifier, so it needs an unqualified name.
using nincc_binding::initAddon;
NODE_API_MODULE(nincc, initAddon)
