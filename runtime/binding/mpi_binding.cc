// The addon's `mpi` object: Open MPI's collectives for data-parallel training (runtime/distributed/mpi.ts),
// each a synchronous call on the main thread (training waits for the reduction anyway), and the
// `reduce` argument of a model's run(), whose buckets are reduced on the run's own threads
// (gradient_reducer.h). Nothing here touches MPI until init() is called, so the addon loads where
// Open MPI is absent.
#include <napi.h>

#include <cstring>
#include <memory>

#include "js_args.h"
#include "js_errors.h"
#include "mpi_binding.h"
#include "mpi_library.h"
#include "nccl_library.h"

namespace nincc_binding {

namespace {

bool initialized = false;  // init() succeeded: the backend a reduce argument may name
// This process's NCCL communicator, once nccl.init() has joined one (one per process: one GPU per rank).
std::unique_ptr<nincc::NcclCollective> ncclComm;

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
    initialized = true;
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

// watch(seconds): starts the hung-rank watchdog (mpi_library.h startWatchdog); collective.
Napi::Value watch(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsNumber()) throw ArgumentError("seconds must be a number");
    double seconds = info[0].As<Napi::Number>().DoubleValue();
    if (!(seconds > 0 && seconds <= 1e6)) throw ArgumentError("seconds must be in (0, 1e6]");
    nincc::MpiLibrary::world().startWatchdog(seconds);
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

bool flagField(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsBoolean()) throw ArgumentError(std::string("reduce.") + name + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

// lastReduce() -> { reducing, exposed }: seconds of the last run() with a reduce argument.
Napi::Value lastReduce(const Napi::CallbackInfo& info) {
  nincc::ReduceTiming t = nincc::lastReduceTiming();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("reducing", t.reducing);
  o.Set("exposed", t.exposed);
  return o;
}

}  // namespace

namespace {

// uniqueId() -> Uint8Array(128): a new NCCL unique id (rank 0 makes it; MPI carries it to the others).
Napi::Value ncclUniqueId(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    nincc::NcclUniqueId id = nincc::NcclLibrary::get().uniqueId();
    Napi::Uint8Array out = Napi::Uint8Array::New(info.Env(), id.size());
    std::memcpy(out.Data(), id.data(), id.size());
    return out;
  });
}

// init(rank, size, id): joins this process to the communicator of `id` (collective over the ranks).
Napi::Value ncclInit(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    int size = int(integerArg(info, 1, "size", 1, 1 << 20));
    int rank = int(integerArg(info, 0, "rank", 0, size - 1));
    TypedView v = viewOf(info, 2, "id");
    if (v.type != napi_uint8_array || v.length != nincc::kNcclUniqueIdBytes)
      throw ArgumentError("id must be a Uint8Array of " + std::to_string(nincc::kNcclUniqueIdBytes) + " bytes");
    if (ncclComm) throw ArgumentError("nccl.init() was called already in this process");
    nincc::NcclUniqueId id{};
    std::memcpy(id.data(), v.data, id.size());
    ncclComm = std::make_unique<nincc::NcclCollective>(rank, size, id);
    return info.Env().Undefined();
  });
}

// version() -> NCCL's version code (e.g. 22105 for 2.21.5).
Napi::Value ncclVersion(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), nincc::NcclLibrary::get().version());
  });
}

}  // namespace

Napi::Object ncclObject(Napi::Env env) {
  Napi::Object nccl = Napi::Object::New(env);
  nccl.Set("uniqueId", Napi::Function::New<ncclUniqueId>(env, "uniqueId"));
  nccl.Set("init", Napi::Function::New<ncclInit>(env, "init"));
  nccl.Set("version", Napi::Function::New<ncclVersion>(env, "version"));
  return nccl;
}

ReduceJob reduceJobArg(const Napi::Value& value) {
  if (!value.IsObject()) throw ArgumentError("reduce must be an object");
  Napi::Object o = value.As<Napi::Object>();
  ReduceJob job{};
  Napi::Value backend = o.Get("backend");
  std::string name = backend.IsString() ? backend.As<Napi::String>().Utf8Value() : "";
  if (name == "mpi") {
    if (!initialized) throw ArgumentError("reduce.backend \"mpi\": call mpi.init() first");
    job.collective = &nincc::MpiLibrary::world();
  } else if (name == "nccl") {
    if (!ncclComm) throw ArgumentError("reduce.backend \"nccl\": call nccl.init() first");
    job.collective = ncclComm.get();
  } else {
    throw ArgumentError("reduce.backend must be \"mpi\", not \"" + name + "\"");
  }
  Napi::Value buckets = o.Get("buckets");
  if (!buckets.IsTypedArray() || buckets.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    throw ArgumentError("reduce.buckets must be a Float64Array of offset, size pairs");
  Napi::Float64Array pairs = buckets.As<Napi::Float64Array>();
  if (pairs.ElementLength() % 2 != 0) throw ArgumentError("reduce.buckets must hold offset, size pairs");
  for (size_t i = 0; i < pairs.ElementLength(); i += 2)
    job.request.buckets.push_back({int64_t(pairs[i]), int64_t(pairs[i + 1])});
  Napi::Value weight = o.Get("weight");
  if (!weight.IsNumber()) throw ArgumentError("reduce.weight must be a number");
  job.request.weight = weight.As<Napi::Number>().DoubleValue();
  if (!(job.request.weight >= 0 && job.request.weight <= 1)) throw ArgumentError("reduce.weight must be in 0..1");
  job.request.overlap = flagField(o, "overlap");
  job.request.state = flagField(o, "state");
  return job;
}

Napi::Object mpiObject(Napi::Env env) {
  Napi::Object mpi = Napi::Object::New(env);
  mpi.Set("init", Napi::Function::New<init>(env, "init"));
  mpi.Set("allreduceSum", Napi::Function::New<allreduceSum>(env, "allreduceSum"));
  mpi.Set("allgather", Napi::Function::New<allgather>(env, "allgather"));
  mpi.Set("barrier", Napi::Function::New<barrier>(env, "barrier"));
  mpi.Set("finalize", Napi::Function::New<finalize>(env, "finalize"));
  mpi.Set("abort", Napi::Function::New<abort>(env, "abort"));
  mpi.Set("watch", Napi::Function::New<watch>(env, "watch"));
  mpi.Set("lastReduce", Napi::Function::New<lastReduce>(env, "lastReduce"));
  return mpi;
}

}  // namespace nincc_binding
