// The addon's `mpi` object: Open MPI's collectives for data-parallel training (runtime/distributed/mpi.ts),
// each a synchronous call on the main thread (training waits for the reduction anyway). Nothing here
// touches MPI until init() is called, so the addon loads where Open MPI is absent.
#include <napi.h>

#include <cstring>

#include "js_args.h"
#include "js_errors.h"
#include "mpi_binding.h"
#include "mpi_library.h"

namespace nincc_binding {

namespace {

struct TypedView {
  napi_typedarray_type type;
  void* data;
  size_t length;
};

// The element type, data and length of a typed array argument (plain or SharedArrayBuffer-backed).
TypedView viewOf(const Napi::CallbackInfo& info, size_t i, const char* what) {
  Napi::TypedArray array = typedArrayArg(info, i, what);
  TypedView v{};
  napi_value buffer;
  size_t offset = 0;
  napi_status s = napi_get_typedarray_info(info.Env(), array, &v.type, &v.length, &v.data, &buffer, &offset);
  if (s != napi_ok) throw ArgumentError(std::string(what) + ": unreadable typed array");
  return v;
}

Napi::Value init(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    nincc::MpiLibrary& mpi = nincc::MpiLibrary::world();
    Napi::Object world = Napi::Object::New(info.Env());
    world.Set("rank", Napi::Number::New(info.Env(), mpi.rank()));
    world.Set("size", Napi::Number::New(info.Env(), mpi.size()));
    return world;
  });
}

// allreduceSum(Float32Array | Float64Array): in place.
Napi::Value allreduceSum(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    TypedView v = viewOf(info, 0, "data");
    nincc::MpiLibrary& mpi = nincc::MpiLibrary::world();
    if (v.type == napi_float32_array) mpi.allreduceSum(static_cast<float*>(v.data), v.length);
    else if (v.type == napi_float64_array) mpi.allreduceSum(static_cast<double*>(v.data), v.length);
    else throw ArgumentError("data must be a Float32Array or Float64Array");
    return info.Env().Undefined();
  });
}

// allgather(Uint8Array) -> Uint8Array of size × length bytes, rank order.
Napi::Value allgather(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    TypedView v = viewOf(info, 0, "bytes");
    if (v.type != napi_uint8_array) throw ArgumentError("bytes must be a Uint8Array");
    nincc::MpiLibrary& mpi = nincc::MpiLibrary::world();
    Napi::Uint8Array all = Napi::Uint8Array::New(info.Env(), v.length * size_t(mpi.size()));
    mpi.allgather(static_cast<const uint8_t*>(v.data), v.length, all.Data());
    return all;
  });
}

Napi::Value barrier(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    nincc::MpiLibrary::world().barrier();
    return info.Env().Undefined();
  });
}

Napi::Value finalize(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    nincc::MpiLibrary::world().finalize();
    return info.Env().Undefined();
  });
}

// abort(code): MPI_Abort on the world; mpirun ends every rank.
Napi::Value abort(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    int code = int(integerArg(info, 0, "code", 0, 255));
    nincc::MpiLibrary::world().abort(code);
  });
}

}  // namespace

Napi::Object mpiObject(Napi::Env env) {
  Napi::Object mpi = Napi::Object::New(env);
  mpi.Set("init", Napi::Function::New<init>(env, "init"));
  mpi.Set("allreduceSum", Napi::Function::New<allreduceSum>(env, "allreduceSum"));
  mpi.Set("allgather", Napi::Function::New<allgather>(env, "allgather"));
  mpi.Set("barrier", Napi::Function::New<barrier>(env, "barrier"));
  mpi.Set("finalize", Napi::Function::New<finalize>(env, "finalize"));
  mpi.Set("abort", Napi::Function::New<abort>(env, "abort"));
  return mpi;
}

}  // namespace nincc_binding
